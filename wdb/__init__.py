"""wdb: web archives to multimodal training data in one SQLite database."""
__version__ = "0.1.0"
