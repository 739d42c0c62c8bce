"""The inflater: zlib-ng where installed (the same API as zlib, inflating WARC members about 1.6x
faster on this machine: bench/ingest_bench.py), else the standard library's zlib."""
try:
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover -- zlib-ng is a dependency; kept for a minimal install
    import zlib

__all__ = ["zlib"]
