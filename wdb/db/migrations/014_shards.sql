-- wdb schema, part 14: shard databases merged into this one (wdb ingest --executor ray, wdb merge).
-- A shard is a complete wdb database written by one task (one archive, or one chunk of one); the
-- driver merges it in one transaction together with its row here, so a shard is merged exactly
-- once however often the driver is killed and restarted.

-- one row per shard merged into this database
CREATE TABLE merged_shards (
    shard TEXT PRIMARY KEY,            -- the shard's uid (sha256 of its runs rows: host, pid, start, parameters)
    path TEXT,                         -- file it was merged from
    run_id INTEGER REFERENCES runs(id), -- the run that merged it (ingest --executor ray, or merge)
    archives INTEGER NOT NULL DEFAULT 0, -- archives it carried rows for
    skipped INTEGER NOT NULL DEFAULT 0, -- archives of it left out: already ingested here, or being ingested
    rows INTEGER NOT NULL DEFAULT 0,   -- rows copied, all tables together
    cpu_seconds REAL,                  -- CPU time the shard's task spent (its runs row), when known
    host TEXT,                         -- host that wrote the shard
    merged_at TEXT NOT NULL,           -- UTC, ISO 8601
    seconds REAL                       -- time the merge took
);
