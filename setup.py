"""The native HTML scanner (wdb/html/_scan.c). Optional: without a C compiler wdb installs all the
same and extracts with lexbor (wdb/html/scan_lexbor.py), which gives the same output, slower."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("wdb.html._scan", ["wdb/html/_scan.c"], depends=["wdb/html/_scan_body.h"], optional=True,
                             extra_compile_args=["-O2"])])
