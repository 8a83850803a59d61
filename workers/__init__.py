"""Worker processes of finkdl, installed as ``finkdl.workers`` so no top-level name is taken."""
