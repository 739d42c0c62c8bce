"""`wdb serve`: Datasette over the database, with wdb's metadata, canned queries and media pages."""
from __future__ import annotations

import socket
from importlib import resources
from pathlib import Path

TEMPLATES = resources.files("wdb.serve") / "templates"  # package data, installed on disk
WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def allowed_hosts(host: str = "127.0.0.1", extra: tuple[str, ...] | list[str] = ()) -> frozenset[str]:
    """Host names the server answers: this machine's loopback names, the bound host (for a wildcard
    bind: the machine's own names) and any extra ones. IP literals are always answered."""
    from .plugin import LOCAL_HOSTS

    names = set(LOCAL_HOSTS)
    if host in WILDCARDS:
        names |= {socket.gethostname(), socket.getfqdn()}
    else:
        names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    names |= set(extra)
    return frozenset(n.lower().rstrip(".") for n in names if n)


def make_datasette(db_path: str | Path, settings: dict | None = None, host: str = "127.0.0.1",
                   extra_hosts: tuple[str, ...] | list[str] = (), max_response_bytes: int | None = None,
                   ratings_token: str | None = None):
    """A Datasette instance for one wdb database (read-only SQL, time limit kept, sizes capped,
    only this server's Host names answered); ratings_token turns on the ratings form's writes."""
    from datasette.app import Datasette
    from datasette.plugins import pm

    from . import plugin
    from .metadata import build_metadata

    if not pm.is_registered(plugin):
        pm.register(plugin, name="wdb")
    plugin.quiet_default_exception_handler()
    name = Path(db_path).stem
    ds = Datasette([str(db_path)], metadata=build_metadata(name), template_dir=str(TEMPLATES),
                   settings={"sql_time_limit_ms": 1000, "truncate_cells_html": 2048, **(settings or {})})
    ds.wdb_allowed_hosts = allowed_hosts(host, extra_hosts)
    ds.wdb_max_response_bytes = max_response_bytes or plugin.MAX_RESPONSE_BYTES
    ds.wdb_ratings_token, ds.wdb_db_path = ratings_token, str(db_path)
    return ds


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8001,
          extra_hosts: tuple[str, ...] | list[str] = (), ratings_token: str | None = None) -> None:
    import uvicorn

    ds = make_datasette(db_path, host=host, extra_hosts=extra_hosts, ratings_token=ratings_token)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
