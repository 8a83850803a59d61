"""Imported by the worker server (finkdl.processes) when the output is s3://: boto3 and the S3
service's description are loaded once, before the workers fork, rather than by each of them
(the server would ignore a failed import; ``warm`` does not fail)."""
from .s3client import warm

warm()
