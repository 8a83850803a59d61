"""finkdl: download Fink Data Transfer topics to partitioned Parquet, exactly once."""

__version__ = "0.1.0"
