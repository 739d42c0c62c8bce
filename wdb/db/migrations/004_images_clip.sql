-- wdb schema, part 4: image bytes (from the archives first, then the web) and CLIP scores.

-- one row per image URL (canonical key): where its bytes are and what they are
CREATE TABLE images (
    url_key TEXT PRIMARY KEY,          -- canonical URL, as media.url_key
    url TEXT NOT NULL,                 -- URL fetched (or answered by an archived record)
    status TEXT NOT NULL,              -- ok | http_error | timeout | dns | connection | too_large | bomb | undecodable | robots
    source TEXT,                       -- archive (an ingested record) | web (downloaded into wdb's own WARC)
    http_status INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    location TEXT,                     -- WARC holding the bytes: an ingested archive or wdb-fetch/*.warc.gz
    "offset" INTEGER,                  -- pointer to the record (gzip member)
    length INTEGER,
    inner INTEGER NOT NULL DEFAULT 0,
    mime TEXT,
    bytes INTEGER,
    width INTEGER,
    height INTEGER,
    frames INTEGER,                    -- frames of an animated image (decoding stops at the cap)
    sha256 TEXT,
    phash TEXT,                        -- perceptual hash (imagehash.phash), for near-duplicates
    fetched_at TEXT
);
CREATE INDEX images_status ON images(status);
CREATE INDEX images_sha256 ON images(sha256);

-- a CLIP model as open_clip names it: model name (or local-dir:) and pretrained tag (or file)
CREATE TABLE clip_models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    pretrained TEXT NOT NULL DEFAULT '',
    embed_dim INTEGER,
    UNIQUE (name, pretrained)
);

-- L2-normalised image embeddings, float16 little-endian blobs, one per image and model
CREATE TABLE image_embeddings (
    url_key TEXT NOT NULL,
    model_id INTEGER NOT NULL REFERENCES clip_models(id),
    embedding BLOB NOT NULL,
    PRIMARY KEY (url_key, model_id)
);

-- cosine similarity of an image and one of its texts, per model: a second model never overwrites
CREATE TABLE clip_scores (
    media_id INTEGER NOT NULL REFERENCES media(id),
    text_source TEXT NOT NULL,         -- alt | span | figcaption
    model_id INTEGER NOT NULL REFERENCES clip_models(id),
    score REAL NOT NULL,
    PRIMARY KEY (media_id, text_source, model_id)
);
CREATE INDEX clip_scores_model ON clip_scores(model_id, text_source, score);
