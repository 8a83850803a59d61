"""The layout of each writer schema a worker meets, when the schema travels in the message
keys (Fink livestream style) and may change from one message to the next."""
from __future__ import annotations

from finkdl.config import DownloadConfig
from finkdl.folder import Folder
from finkdl.layout import Layout, layout_for
from finkdl.schema import looks_like_schema, parse_schema


class Layouts:
    """The layout of each writer schema met, fitted to the folder before any of it is written."""

    def __init__(self, cfg: DownloadConfig, schema_text: str, key_schemas: bool, folder: Folder) -> None:
        self.cfg, self.key_schemas, self.folder = cfg, key_schemas, folder
        # The plan checked the first schema strictly and fitted the folder to it.
        self.first = layout_for(parse_schema(schema_text, "the topic's schema"), cfg, strict=False)
        self.by_key: dict[bytes, Layout] = {schema_text.encode(): self.first}
        self.fitted: set[Layout] = {self.first}

    def runs(self, msgs: list, current: Layout, _partition: int) -> list[tuple[Layout, list]]:
        """Runs of consecutive messages written with one schema."""
        if not self.key_schemas:
            return [(current, msgs)] if msgs else []
        runs: list[tuple[Layout, list]] = []
        for msg in msgs:
            current = self._layout(msg.key(), current)
            if runs and runs[-1][0] is current:
                runs[-1][1].append(msg)
            else:
                runs.append((current, [msg]))
        return runs

    def _layout(self, key: bytes | None, current: Layout) -> Layout:
        """The layout of the schema in a message key; the current one for a key holding none."""
        layout = self.by_key.get(key) if key else None
        if layout is None and looks_like_schema(key):
            layout = layout_for(parse_schema(key, "a message key"), self.cfg, strict=False)
            self.by_key[key] = layout
        return layout or current

    def fit(self, layout: Layout, partition: int, offset: int) -> None:
        """A schema met mid-topic widens the folder, or stops the worker here, before anything
        of it is written: committed offsets stay before it."""
        if layout not in self.fitted:
            self.folder.fit(layout.written, layout.part.keys,
                            f"the schema in the key of partition {partition}'s message at offset {offset}")
            self.fitted.add(layout)
