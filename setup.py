"""The one thing setup.cfg cannot declare: finkdl's C Avro decoder (finkdl/_avro.c)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("finkdl._avro", ["finkdl/_avro.c"])])
