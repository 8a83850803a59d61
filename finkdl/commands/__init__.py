"""The ``finkdl`` commands, one module per family; ``finkdl.cli`` puts them in one group."""
