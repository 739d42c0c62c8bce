-- wdb schema, part 12: exports (wdb export). Each export of a recipe is a row with its manifest;
-- the pairs it wrote are rows too, so that an opt-out can list the exports to re-issue.

-- one row per export: the recipe, its parameters, the database state it read, where it went
CREATE TABLE exports (
    id INTEGER PRIMARY KEY,
    recipe TEXT NOT NULL,              -- recipe name (built-in) or path (a user's .sql file)
    recipe_sha256 TEXT NOT NULL,       -- sha256 of the recipe's SQL text
    params TEXT NOT NULL,              -- the recipe's parameters, JSON
    format TEXT NOT NULL,              -- webdataset | parquet | uids | img2dataset | interleaved | tar-in-tar | txt-media-txt
    out TEXT NOT NULL,                 -- output folder, absolute
    state_hash TEXT,                   -- hash of the database state the export read (see the manifest)
    pairs INTEGER,                     -- pairs written
    status TEXT NOT NULL,              -- running | done | failed | interrupted
    manifest_sha256 TEXT,              -- sha256 of the manifest file written beside the shards
    run_id INTEGER REFERENCES runs(id), -- the run that wrote it
    created TEXT NOT NULL,             -- UTC, ISO 8601
    finished TEXT                      -- UTC, ISO 8601; NULL while running
);

-- one row per pair an export wrote
CREATE TABLE export_items (
    export_id INTEGER NOT NULL REFERENCES exports(id),
    uid TEXT NOT NULL,                 -- the pair's uid (32 hex characters, as DataComp's pools)
    media_id INTEGER NOT NULL REFERENCES media(id), -- the media item
    text_source TEXT NOT NULL,         -- alt | span | figcaption | ... (the recipe's text_source)
    shard TEXT,                        -- the shard file that holds it
    PRIMARY KEY (export_id, uid)
);
CREATE INDEX export_items_media ON export_items(media_id);
