"""`wdb serve`: Datasette over the database, with wdb's metadata, canned queries and media pages."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

TEMPLATES = resources.files("wdb.serve") / "templates"  # package data, installed on disk


def make_datasette(db_path: str | Path, settings: dict | None = None):
    """A Datasette instance for one wdb database (read-only SQL, time limit kept)."""
    from datasette.app import Datasette
    from datasette.plugins import pm

    from . import plugin
    from .metadata import build_metadata

    if not pm.is_registered(plugin):
        pm.register(plugin, name="wdb")
    name = Path(db_path).stem
    return Datasette([str(db_path)], metadata=build_metadata(name), template_dir=str(TEMPLATES),
                     settings={"sql_time_limit_ms": 1000, **(settings or {})})


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8001) -> None:
    import uvicorn

    ds = make_datasette(db_path)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
