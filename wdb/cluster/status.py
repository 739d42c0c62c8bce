"""`wdb status DB`: where a database's ingest stands: archives by status, shards merged and their
merge rate, and the runs still going with their latest progress (a Ray driver updates its runs row
every few seconds: chunks done / running / failed, pages, pages/s)."""
from __future__ import annotations

import json
import sqlite3
import time

from ..ingest.store import lease_alive


def status(conn: sqlite3.Connection) -> dict:
    archives = dict(conn.execute("SELECT status, count(*) FROM archives GROUP BY status").fetchall())
    chunks = dict(conn.execute("SELECT status, count(*) FROM archive_chunks GROUP BY status").fetchall())
    n, rows, secs, cpu = conn.execute("SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(seconds), 0), "
                                      "sum(cpu_seconds) FROM merged_shards").fetchone()
    pages = conn.execute("SELECT coalesce(max(id), 0) FROM pages").fetchone()[0]
    out = dict(archives=archives, chunks=chunks,
               pages=conn.execute("SELECT count(*) FROM pages").fetchone()[0] if pages else 0,
               problems=conn.execute("SELECT count(*) FROM problems").fetchone()[0],
               shards=dict(merged=n, rows=rows, merge_seconds=round(secs, 3),
                           rows_per_s=round(rows / secs) if secs else None,
                           task_cpu_seconds=round(cpu, 3) if cpu is not None else None),
               running=[])
    for rid, cmd, host, pid, started, counters in conn.execute(
            "SELECT id, command, host, pid, started_at, counters FROM runs WHERE status = 'running' ORDER BY id"):
        try:
            c = json.loads(counters) if counters else {}
        except ValueError:
            c = {}
        prog = c.get("progress") if isinstance(c, dict) else None
        alive = lease_alive(conn, f"run:{rid}@{host}:{pid}", prog.get("at") if prog else None)
        r = dict(run=rid, command=cmd, host=host, pid=pid, started_at=started, alive=alive)
        if prog:
            r.update(progress=prog, updated_s_ago=round(time.time() - prog.get("at", time.time()), 1))
        out["running"].append(r)
    return out


def render(s: dict) -> str:
    a = s["archives"]
    lines = ["archives: " + (", ".join(f"{v} {k}" for k, v in sorted(a.items())) or "none"),
             "chunks: " + (", ".join(f"{v} {k}" for k, v in sorted(s["chunks"].items())) or "none"),
             f"pages: {s['pages']:,}; problems: {s['problems']:,}"]
    sh = s["shards"]
    if sh["merged"]:
        lines.append(f"shards merged: {sh['merged']:,} ({sh['rows']:,} rows in {sh['merge_seconds']}s"
                     + (f", {sh['rows_per_s']:,} rows/s" if sh["rows_per_s"] else "")
                     + (f"; tasks used {sh['task_cpu_seconds']} CPU-s" if sh["task_cpu_seconds"] else "") + ")")
    for r in s["running"]:
        state = "alive" if r["alive"] else "gone (its archives are resumed by the next ingest)"
        line = f"run {r['run']} {r['command']} on {r['host']} pid {r['pid']} since {r['started_at']}: {state}"
        p = r.get("progress")
        if p:
            a = p.get("archives") or {}
            line += (f"; archives {a.get('done', 0)}/{a.get('total', 0)} done, {a.get('running', 0)} running, "
                     f"{a.get('failed', 0)} failed; chunks {p['done']}/{p['chunks']} done, {p['running']} running, "
                     f"{p['failed']} failed; {p['pages']:,} pages ({p['pages_per_s']} pages/s), "
                     f"{r['updated_s_ago']}s ago")
        lines.append(line)
    if not s["running"]:
        lines.append("no run is going")
    return "\n".join(lines)
