"""The package's shape: modules small enough to read at once, importing one another without a
cycle, and a data path that does not lean on the local broker, the generator or the demo."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"finkdl": ROOT / "finkdl", "finkdl.workers": ROOT / "workers"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join([package, *parts])
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(unresolved: list[str] | None = None) -> dict[str, set[str]]:
    """Module → the finkdl modules it imports, anywhere in it (functions included); the finkdl
    imports naming no module of the checkout go to ``unresolved``."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
                if unresolved is not None and base.split(".")[0] == "finkdl" and base not in modules \
                        and base != "finkdl":
                    unresolved.append(f"{name}: {base}")
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name and t != "finkdl"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    assert _cycle(import_graph()) is None, " → ".join(_cycle(import_graph()))


def test_every_finkdl_import_names_a_module_of_the_checkout():
    unresolved: list[str] = []
    import_graph(unresolved)  # imports inside functions too, which only the command that runs them meets
    assert not unresolved, unresolved


def test_a_cycle_would_be_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_data_path_does_not_import_the_local_broker_generator_or_demo():
    graph = import_graph()
    local = {name for name in graph if name.startswith("finkdl.local")}
    users = {name for name, targets in graph.items() if targets & local} - local
    assert users <= {"finkdl.commands.demo"}, users


# Modules longer than the limit before it was set, each held under a ceiling until it is split.
LIMIT = 300
OVER_LIMIT = {"finkdl.local.broker": 360, "finkdl.writer": 330, "finkdl.workers.worker": 330}


def test_every_module_is_small_enough_to_read_at_once():
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    too_long = {name: n for name, n in sizes.items() if n > OVER_LIMIT.get(name, LIMIT)}
    assert not too_long, f"over {LIMIT} lines, split them: {too_long}"


def test_the_command_line_is_a_thin_entry_with_one_module_per_command_family():
    graph = import_graph()
    families = {"finkdl.commands.download", "finkdl.commands.fink_client", "finkdl.commands.inspect",
                "finkdl.commands.register", "finkdl.commands.demo", "finkdl.look.commands"}
    assert families <= graph["finkdl.cli"]
    assert {name for name in graph if "finkdl.cli" in graph[name]} <= {"finkdl.startup"}
    assert "finkdl.look.commands" not in graph["finkdl.commands.download"]  # a download loads no look code
