-- wdb schema, part 6: the views every stage shares, run and archive ownership, model identity.

ALTER TABLE runs ADD COLUMN error TEXT;       -- why a run failed or was interrupted (one line)
ALTER TABLE runs ADD COLUMN host TEXT;        -- machine the run ran on
ALTER TABLE runs ADD COLUMN pid INTEGER;      -- process id of the run

ALTER TABLE archives ADD COLUMN head TEXT;    -- sha256 of the first 64 KiB (or fewer) bytes of a local file
ALTER TABLE archives ADD COLUMN owner TEXT;   -- the run holding the lease: run:<id>@<host>:<pid>
ALTER TABLE archives ADD COLUMN heartbeat REAL; -- unix time the owner last committed (the lease is renewed with each batch)
UPDATE archives SET head = substr(identity, 16, 64) WHERE identity LIKE 'sha256-head64k:%';
CREATE INDEX archives_head ON archives(head);

-- a CLIP model as open_clip names it, with the identity of its weights (a second set of weights at the same path is a second model)
CREATE TABLE clip_models_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,                -- open_clip model name, or local-dir:PATH
    pretrained TEXT NOT NULL DEFAULT '', -- open_clip pretrained tag, checkpoint file, or '' (local-dir: its own weights)
    weights TEXT NOT NULL DEFAULT '',  -- sha256 of the weights file(s) when local; '' for a named open_clip tag
    embed_dim INTEGER,
    UNIQUE (name, pretrained, weights)
);
INSERT INTO clip_models_new (id, name, pretrained, embed_dim) SELECT id, name, pretrained, embed_dim FROM clip_models;
DROP TABLE clip_models;
ALTER TABLE clip_models_new RENAME TO clip_models;

-- every (image, model) scoring attempt: ok (an embedding row exists) or why there is none
CREATE TABLE clip_image_status (
    url_key TEXT NOT NULL,
    model_id INTEGER NOT NULL REFERENCES clip_models(id),
    status TEXT NOT NULL,              -- ok | unreadable | sha256_mismatch | undecodable
    error TEXT,
    run_id INTEGER REFERENCES runs(id),
    PRIMARY KEY (url_key, model_id)
);
INSERT INTO clip_image_status (url_key, model_id, status) SELECT url_key, model_id, 'ok' FROM image_embeddings;

-- archived records that can answer a request for their URL: successful captures, with the media kind of their payload
CREATE VIEW archived_answers AS
SELECT x.id,               -- archived_media row
       x.url_key,          -- canonical URL it answers
       substr(x.mime, 1, instr(x.mime || '/', '/') - 1) AS kind, -- image | audio | video | ... (from the mime)
       x.archive_id, x."offset", x.length, x.inner, x.http_status, x.mime, x.bytes, x.sha256, x.width, x.height
FROM archived_media x
WHERE x.http_status IS NULL OR x.http_status < 300;

-- the bytes of each media item: an ingested archive's record first, then a downloaded copy (wdb fetch)
CREATE VIEW media_bytes AS
SELECT m.id AS media_id,   -- the media item
       m.kind,             -- image | audio | video | embed
       m.url_key,          -- canonical URL of the item
       'archive' AS source, -- archive (a record of an ingested archive) | web (downloaded by wdb fetch)
       a.location,         -- WARC file (path or URL) holding the record
       x."offset",         -- of the record's gzip member (or the record)
       x.length,           -- of the gzip member
       x.inner,            -- of the record inside the inflated member
       x.mime,             -- media type of the payload
       x.bytes,            -- payload size
       x.sha256,           -- of the payload: checked whenever the bytes are read back
       x.width,            -- pixels
       x.height            -- pixels
FROM (SELECT m.*, (SELECT y.id FROM archived_answers y WHERE y.url_key = m.url_key
                   AND (m.kind NOT IN ('image', 'audio', 'video') OR y.kind = m.kind) ORDER BY y.id LIMIT 1) AS answer
      FROM media m) m
JOIN archived_media x ON x.id = m.answer
JOIN archives a ON a.id = x.archive_id
UNION ALL
SELECT m.id, m.kind, m.url_key, 'web', i.location, i."offset", i.length, i.inner, i.mime, i.bytes, i.sha256,
       i.width, i.height
FROM media m JOIN images i ON i.url_key = m.url_key
WHERE i.status = 'ok' AND i.source = 'web' AND NOT EXISTS (
    SELECT 1 FROM archived_answers y WHERE y.url_key = m.url_key
    AND (m.kind NOT IN ('image', 'audio', 'video') OR y.kind = m.kind));

-- the current span-extractor prediction of each image: that of the newest run that predicted it
CREATE VIEW current_spans AS
SELECT s.media_id,         -- the media item
       s.run_id,           -- span_runs row that predicted it
       s.start,            -- character span in pages.text (NULL: no description)
       s."end",
       s.text,             -- the predicted description
       s.confidence,       -- start_prob * end_prob of the span
       s.none_prob         -- probability of "no description"
FROM spans s
WHERE s.run_id = (SELECT max(t.run_id) FROM spans t WHERE t.media_id = s.media_id);
