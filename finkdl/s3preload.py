"""Imported by the worker server (finkdl.processes) when the output is s3://: boto3 and the S3
service's description are loaded once, before the workers fork, rather than by each of them.

The server ignores a preload that fails to import; this one must not fail otherwise either:
a worker that finds boto3 missing or broken says so itself, in one line.
"""
from .s3client import warm

try:
    warm()
except Exception:  # noqa: BLE001 - see above: the worker reports it
    pass
