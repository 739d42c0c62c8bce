CREATE INDEX archived_media_url_key ON archived_media(url_key);
CREATE INDEX archives_head ON archives(head);
CREATE INDEX clip_scores_model ON clip_scores(model_id, text_source, score);
CREATE INDEX domain_stats_order ON domain_stats(pages DESC, images DESC, domain);
CREATE INDEX dup_groups_group ON dup_groups(method, version, group_id);
CREATE INDEX export_items_media ON export_items(media_id);
CREATE INDEX image_signals_current ON image_signals(signal, run_id, version);
CREATE INDEX image_signals_signal ON image_signals(signal, version, value);
CREATE INDEX images_sha256 ON images(sha256);
CREATE INDEX images_status ON images(status);
CREATE INDEX media_kind ON media(kind);
CREATE INDEX media_kind_page ON media(kind, page_id, seq);
CREATE INDEX media_url_stats_order ON media_url_stats(kind, items DESC, url);
CREATE INDEX media_urls_media ON media_urls(media_id);
CREATE INDEX page_signals_current ON page_signals(signal, run_id, version);
CREATE INDEX page_signals_signal ON page_signals(signal, version, label);
CREATE INDEX page_stats_flow ON page_stats(images_in_flow DESC, page_id, words);
CREATE INDEX pages_archive ON pages(archive_id, "offset");
CREATE INDEX pages_domain ON pages(domain);
CREATE INDEX problems_archive ON problems(archive_id, kind);
CREATE INDEX sd_images_prompt ON sd_images(prompt_id, seed);
CREATE INDEX sd_ratings_image ON sd_ratings(image_id, aspect);
CREATE INDEX sd_runs_params ON sd_runs(params_sha256, status);
CREATE INDEX span_examples_split ON span_examples(run_id, split);
CREATE INDEX text_signals_current ON text_signals(signal, run_id, version);
CREATE INDEX text_signals_signal ON text_signals(signal, version, source, value);
CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
CREATE TABLE alt_matches (
    media_id INTEGER PRIMARY KEY REFERENCES media(id),
    side TEXT NOT NULL,                -- before | after
    start INTEGER NOT NULL,            -- character span in pages.text
    "end" INTEGER NOT NULL,
    kind TEXT NOT NULL,                -- exact | normalised | partial
    score REAL NOT NULL
);
CREATE TABLE alt_words (
    media_id INTEGER PRIMARY KEY REFERENCES media(id), -- the image
    words INTEGER NOT NULL             -- spaces in the trimmed alt text plus one
);
CREATE TABLE archive_chunks (
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    start INTEGER NOT NULL,
    "end" INTEGER,                     -- NULL: to the end of the file
    pos INTEGER NOT NULL,              -- offset of the gzip member (or record) to resume at
    skip INTEGER NOT NULL DEFAULT 0,   -- records of that member already stored
    status TEXT NOT NULL DEFAULT 'pending', -- pending | done | failed
    PRIMARY KEY (archive_id, start)
);
CREATE TABLE archived_media (
    id INTEGER PRIMARY KEY,
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    record_id TEXT,
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    length INTEGER,
    inner INTEGER NOT NULL DEFAULT 0,
    captured_at TEXT,
    http_status INTEGER,
    mime TEXT,                         -- from Content-Type, or sniffed from the bytes
    bytes INTEGER,                     -- payload bytes (decoded)
    sha256 TEXT,                       -- of the payload
    width INTEGER,                     -- pixels, from the image header
    height INTEGER,
    flags TEXT                         -- short, capped, truncated
);
CREATE TABLE archives (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,     -- local: size + sha256 of the first 64 KiB; URL: the URL
    location TEXT NOT NULL,            -- path (absolute) or URL it was last read from
    name TEXT NOT NULL,
    size INTEGER,
    compression TEXT,                  -- gzip | none
    status TEXT NOT NULL DEFAULT 'pending', -- pending | running | done | partial | failed
    error TEXT,
    records INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    media_records INTEGER NOT NULL DEFAULT 0,
    problems INTEGER NOT NULL DEFAULT 0,
    bytes_read INTEGER NOT NULL DEFAULT 0,
    run_id INTEGER REFERENCES runs(id),
    started_at TEXT,
    finished_at TEXT
, head TEXT, owner TEXT, heartbeat REAL);
CREATE TABLE clip_image_status (
    url_key TEXT NOT NULL,
    model_id INTEGER NOT NULL REFERENCES clip_models(id),
    status TEXT NOT NULL,              -- ok | unreadable | sha256_mismatch | undecodable
    error TEXT,
    run_id INTEGER REFERENCES runs(id),
    PRIMARY KEY (url_key, model_id)
);
CREATE TABLE "clip_models" (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,                -- open_clip model name, or local-dir:PATH
    pretrained TEXT NOT NULL DEFAULT '', -- open_clip pretrained tag, checkpoint file, or '' (local-dir: its own weights)
    weights TEXT NOT NULL DEFAULT '',  -- sha256 of the weights file(s) when local; '' for a named open_clip tag
    embed_dim INTEGER,
    UNIQUE (name, pretrained, weights)
);
CREATE TABLE clip_scores (
    media_id INTEGER NOT NULL REFERENCES media(id),
    text_source TEXT NOT NULL,         -- alt | span | figcaption
    model_id INTEGER NOT NULL REFERENCES clip_models(id),
    score REAL NOT NULL,
    PRIMARY KEY (media_id, text_source, model_id)
);
CREATE TABLE dedup_state (
    method TEXT NOT NULL,              -- url | sha256 | phash | clip | repeats
    version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,         -- counts and largest ids of the inputs
    groups INTEGER,                    -- groups found
    members INTEGER,                   -- items in those groups
    run_id INTEGER REFERENCES runs(id),
    PRIMARY KEY (method, version)
);
CREATE TABLE domain_stats (
    domain TEXT NOT NULL PRIMARY KEY,  -- pages.domain ('' stands for pages without a domain)
    pages INTEGER NOT NULL,            -- pages of the domain
    images INTEGER NOT NULL,           -- image items on them
    images_with_alt INTEGER NOT NULL   -- image items with an alt attribute
) WITHOUT ROWID;
CREATE TABLE dup_groups (
    kind TEXT NOT NULL,                -- media (key = media.id) | image (key = images.url_key)
    "key" TEXT NOT NULL,               -- the member
    method TEXT NOT NULL,              -- url | sha256 | phash | clip
    version TEXT NOT NULL,             -- parameters: e.g. phash d<=5, clip model id and cosine threshold
    group_id INTEGER NOT NULL,         -- the group (smallest member index of the run; unique within method+version)
    keep INTEGER NOT NULL DEFAULT 0,   -- 1: this group's representative (url: newest capture; images: most pixels)
    run_id INTEGER REFERENCES runs(id), -- run that grouped it
    PRIMARY KEY (kind, "key", method, version)
);
CREATE TABLE export_items (
    export_id INTEGER NOT NULL REFERENCES exports(id),
    uid TEXT NOT NULL,                 -- the pair's uid (32 hex characters, as DataComp's pools)
    media_id INTEGER NOT NULL REFERENCES media(id), -- the media item
    text_source TEXT NOT NULL,         -- alt | span | figcaption | ... (the recipe's text_source)
    shard TEXT,                        -- the shard file that holds it
    PRIMARY KEY (export_id, uid)
);
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
CREATE TABLE image_embeddings (
    url_key TEXT NOT NULL,
    model_id INTEGER NOT NULL REFERENCES clip_models(id),
    embedding BLOB NOT NULL,
    PRIMARY KEY (url_key, model_id)
);
CREATE TABLE image_signals (
    url_key TEXT NOT NULL,             -- images.url_key
    signal TEXT NOT NULL,              -- width | height | min_side | aspect | format | frames | bytes | placeholder | aesthetic | nsfw | url_repeats
    version TEXT NOT NULL,             -- how it was computed (aesthetic: head and clip_models id)
    value REAL,                        -- the number (aspect = long side / short side; 1/0 for placeholder)
    label TEXT,                        -- a category (format: jpeg, png, gif, webp, ...)
    run_id INTEGER REFERENCES runs(id), -- run that computed it
    PRIMARY KEY (url_key, signal, version)
);
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
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    page_id INTEGER NOT NULL REFERENCES pages(id),
    seq INTEGER NOT NULL,              -- order in the page
    kind TEXT NOT NULL,                -- image | audio | video | embed
    tag TEXT NOT NULL,                 -- img | audio | video | iframe | embed | object | a | og:image
    url TEXT NOT NULL,                 -- resolved absolute http(s) URL chosen for the item
    url_key TEXT NOT NULL,             -- canonical form, joins with archived_media.url_key
    alt TEXT,
    title TEXT,
    figcaption TEXT,
    width INTEGER,
    height INTEGER,
    pos INTEGER,                       -- character offset in pages.text (NULL: not in the flow)
    ctx_start INTEGER,                 -- start of the context window before (pages.text offset)
    ctx_end INTEGER, region TEXT, placeholder INTEGER NOT NULL DEFAULT 0, render_width INTEGER, render_height INTEGER,                   -- end of the context window after
    UNIQUE (page_id, seq)
);
CREATE VIRTUAL TABLE media_fts USING fts5(alt, title, figcaption, content="media", content_rowid='id');
CREATE TABLE media_url_stats (
    kind TEXT NOT NULL,                -- image | audio | video | embed
    url TEXT NOT NULL,                 -- media.url
    items INTEGER NOT NULL,            -- media items with that URL
    pages INTEGER NOT NULL,            -- distinct pages holding them
    media_id INTEGER NOT NULL,         -- the first such item (its url_key finds archived bytes)
    PRIMARY KEY (kind, url)
) WITHOUT ROWID;
CREATE TABLE media_urls (
    media_id INTEGER NOT NULL REFERENCES media(id),
    attr TEXT NOT NULL,
    raw TEXT NOT NULL,
    url TEXT,                          -- resolved, NULL when skipped (javascript:, data:, broken)
    descriptor TEXT                    -- srcset descriptor (300w, 2x)
);
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
CREATE TABLE optout (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                -- url (an image or page URL) | domain (a host and its subdomains)
    value TEXT NOT NULL,               -- url: its canonical key (as media.url_key); domain: lower-case host without www.
    raw TEXT NOT NULL,                 -- the line as the file gave it
    file TEXT NOT NULL,                -- absolute path of the file it was read from
    line INTEGER NOT NULL,             -- its line number in that file
    added_at TEXT NOT NULL,            -- UTC, ISO 8601
    run_id INTEGER REFERENCES runs(id), -- the wdb optout run that added it
    UNIQUE (kind, value)
);
CREATE TABLE optout_rejects (
    file TEXT NOT NULL,                -- absolute path of the file
    line INTEGER NOT NULL,             -- line number
    raw TEXT NOT NULL,                 -- the line (cut at 1,000 characters)
    reason TEXT NOT NULL,              -- why it is not a URL or a domain
    run_id INTEGER REFERENCES runs(id), -- the run that read it
    PRIMARY KEY (file, line, raw)
);
CREATE TABLE page_signals (
    page_id INTEGER NOT NULL REFERENCES pages(id), -- the page
    signal TEXT NOT NULL,              -- lang (fastText on the page text) | declared_lang (pages.lang normalised)
    version TEXT NOT NULL,             -- how it was computed
    value REAL,                        -- confidence (lang); NULL for declared_lang
    label TEXT,                        -- ISO 639 language code (primary subtag, lower case); NULL when none
    run_id INTEGER REFERENCES runs(id), -- run that computed it
    PRIMARY KEY (page_id, signal, version)
);
CREATE TABLE page_stats (
    page_id INTEGER PRIMARY KEY REFERENCES pages(id), -- the page
    words INTEGER NOT NULL,            -- spaces in pages.text plus one (the canned queries' word count)
    media INTEGER NOT NULL,            -- media items of any kind
    images INTEGER NOT NULL,           -- image items
    images_in_flow INTEGER NOT NULL,   -- image items in the text flow (media.pos not NULL)
    images_with_alt INTEGER NOT NULL   -- image items with an alt attribute
);
CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    record_id TEXT,                    -- WARC-Record-ID
    url TEXT NOT NULL,                 -- WARC-Target-URI of the capture
    domain TEXT,                       -- host without www.
    "offset" INTEGER NOT NULL,         -- of the gzip member (or the record in a plain file)
    length INTEGER,                    -- compressed length; 0 when several records share a member
    inner INTEGER NOT NULL DEFAULT 0,  -- offset of the record inside the inflated member
    captured_at TEXT,                  -- WARC-Date
    http_status INTEGER,
    content_type TEXT,
    charset TEXT,
    charset_source TEXT,               -- bom | header | meta | utf-8 | detected | fallback
    title TEXT,
    lang TEXT,                         -- declared: <html lang>, Content-Language
    text TEXT NOT NULL,                -- visible text in document order; media positions index it
    body_bytes INTEGER,
    flags TEXT                         -- comma list: short, capped, text_capped, truncated, ...
, regions TEXT);
CREATE VIRTUAL TABLE pages_fts USING fts5(title, text, content="pages", content_rowid='id');
CREATE TABLE problems (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    archive_id INTEGER REFERENCES archives(id),
    "offset" INTEGER,
    url TEXT,
    kind TEXT NOT NULL,                -- e.g. short_record, capped, corrupt_gzip, worker_crash
    message TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    params TEXT NOT NULL,              -- JSON: the command's parameters
    counters TEXT,                     -- JSON: what the run did
    status TEXT NOT NULL DEFAULT 'running', -- running | done | failed (interrupted runs stay 'running')
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seconds REAL
, error TEXT, host TEXT, pid INTEGER);
CREATE TABLE sd_embeddings (
    image_id INTEGER NOT NULL REFERENCES sd_images(id),
    clip_model_id INTEGER NOT NULL REFERENCES clip_models(id),
    embedding BLOB NOT NULL,
    PRIMARY KEY (image_id, clip_model_id)
);
CREATE TABLE sd_images (
    id INTEGER PRIMARY KEY,
    base TEXT NOT NULL,                -- base model the pipeline was loaded from
    sd_run_id INTEGER NOT NULL DEFAULT 0, -- fine-tuning run whose weights were used; 0 = the base model itself
    prompt_id INTEGER NOT NULL REFERENCES sd_prompts(id),
    seed INTEGER NOT NULL,             -- torch.Generator seed of the initial latents
    config TEXT NOT NULL,              -- sampling settings, JSON (steps, guidance, width, height, scheduler)
    location TEXT NOT NULL,            -- WARC holding the PNG (<db>.wdb/sd/generated-NNNNN.warc.gz)
    "offset" INTEGER NOT NULL,         -- of the resource record's gzip member
    length INTEGER NOT NULL,           -- of the gzip member
    inner INTEGER NOT NULL DEFAULT 0,
    mime TEXT NOT NULL,                -- image/png
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,              -- of the PNG: checked whenever it is read back
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    run_id INTEGER REFERENCES runs(id), -- the generate run that made it
    UNIQUE (base, sd_run_id, prompt_id, seed, config)
);
CREATE TABLE sd_losses (
    sd_run_id INTEGER NOT NULL REFERENCES sd_runs(id),
    step INTEGER NOT NULL,             -- 1-based optimisation step
    loss REAL NOT NULL,                -- MSE of the UNet's prediction against its target (noise or velocity)
    lr REAL,                           -- learning rate at that step
    PRIMARY KEY (sd_run_id, step)
);
CREATE TABLE sd_prompt_sets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,         -- the set's name (`wdb sd generate --prompts NAME`)
    source TEXT NOT NULL,              -- generator (wdb's word lists and templates) | the imported file's path
    params TEXT NOT NULL,              -- generator seed and sizes, or the file's sha256, JSON
    run_id INTEGER REFERENCES runs(id), -- the run that made it
    created TEXT NOT NULL              -- UTC, ISO 8601
);
CREATE TABLE sd_prompts (
    id INTEGER PRIMARY KEY,
    set_id INTEGER NOT NULL REFERENCES sd_prompt_sets(id),
    kind TEXT NOT NULL,                -- sensible | nonsensical (impossible combinations of the same parts) | a file's own kind
    grp INTEGER NOT NULL,              -- prompt group (the prompts of one group describe one subject)
    level INTEGER NOT NULL,            -- detail level within the group, 1 = the bare subject
    prompt TEXT NOT NULL,
    elements TEXT NOT NULL,            -- JSON list of the prompt's parts (objects, attributes, places) scored one by one
    words INTEGER NOT NULL,            -- prompt-side complexity: words
    content_words INTEGER NOT NULL,    -- prompt-side complexity: distinct content words (stop words left out)
    UNIQUE (set_id, kind, grp, level)
);
CREATE TABLE sd_ratings (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES sd_images(id),
    rater TEXT NOT NULL,               -- the Datasette actor's id, or the name given on the form (with the token)
    aspect TEXT NOT NULL,              -- conformity | quality | detail | realism | aesthetics
    value INTEGER NOT NULL CHECK (value BETWEEN 0 AND 5),
    rated_at TEXT NOT NULL             -- UTC, ISO 8601
);
CREATE TABLE sd_runs (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id), -- the runs row of the training command
    base TEXT NOT NULL,                -- base model: a Hugging Face id or a local save_pretrained folder
    mode TEXT NOT NULL,                -- full (the whole UNet) | lora (peft adapters on the UNet's attention)
    recipe TEXT NOT NULL,              -- recipe name (built-in) or path (a user's .sql file)
    recipe_sha256 TEXT NOT NULL,       -- sha256 of the recipe's SQL text
    recipe_params TEXT NOT NULL,       -- the recipe's parameters, JSON
    pairs INTEGER,                     -- pairs trained on (pairs whose bytes could not be read are left out and counted)
    pairs_sha256 TEXT,                 -- manifest hash: sha256 over (media_id, text, image sha256) of every pair, in order
    params TEXT NOT NULL,              -- every training parameter, JSON (resolution, steps, batch, lr, seed, precision, rank...)
    params_sha256 TEXT NOT NULL,       -- sha256 of base, mode, recipe, pairs and params: a second identical run is skipped
    checkpoint TEXT,                   -- folder of the trained weights, under the database's side folder (<db>.wdb/sd/)
    steps_done INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,              -- running | done | failed | interrupted
    created TEXT NOT NULL,             -- UTC, ISO 8601
    finished TEXT                      -- UTC, ISO 8601; NULL while running
);
CREATE TABLE sd_scores (
    image_id INTEGER NOT NULL REFERENCES sd_images(id),
    clip_model_id INTEGER NOT NULL DEFAULT 0, -- clip_models row; 0 for metrics without a model (image complexity)
    metric TEXT NOT NULL,              -- clip_score | element | compliance | group_rank | bytes_per_pixel | edge_density | entropy
    element TEXT NOT NULL DEFAULT '',  -- the prompt part scored (metric = element), else ''
    value REAL NOT NULL,
    PRIMARY KEY (image_id, clip_model_id, metric, element)
);
CREATE TABLE sd_set_scores (
    base TEXT NOT NULL,                -- as sd_images.base
    sd_run_id INTEGER NOT NULL,        -- as sd_images.sd_run_id (0 = base model)
    config TEXT NOT NULL,              -- as sd_images.config
    scope TEXT NOT NULL,               -- prompt:<sd_prompts.id> (diversity) | set:<sd_prompt_sets.id> (frechet)
    clip_model_id INTEGER NOT NULL REFERENCES clip_models(id),
    metric TEXT NOT NULL,              -- diversity (mean pairwise 1 - cosine across seeds) | frechet (against the reference)
    reference TEXT NOT NULL DEFAULT '', -- frechet: the reference recipe and its pairs' hash
    n INTEGER NOT NULL,                -- images in the set
    value REAL NOT NULL,
    PRIMARY KEY (base, sd_run_id, config, scope, clip_model_id, metric, reference)
);
CREATE TABLE span_epoch_spans (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    epoch INTEGER NOT NULL,            -- 0: before training
    split TEXT NOT NULL,               -- train (its first 512 windows) | validation
    span_n INTEGER NOT NULL,           -- windows of examples with a true span
    span_em REAL,
    span_iou REAL,
    PRIMARY KEY (run_id, epoch, split)
);
CREATE TABLE span_epochs (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    epoch INTEGER NOT NULL,            -- 0: before training
    split TEXT NOT NULL,
    loss REAL,
    em REAL,                           -- exact match of (start, end), "no span" counts when both say none
    iou REAL,                          -- token-level intersection over union of the spans
    examples INTEGER,
    PRIMARY KEY (run_id, epoch, split)
);
CREATE TABLE span_evals (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    method TEXT NOT NULL,              -- model | nearest_sentence | figcaption | random
    grp TEXT NOT NULL,                 -- all | exact | normalised | partial | none | figcaption | conf:0.8-1.0 ...
    n INTEGER NOT NULL,
    em REAL,
    iou REAL,
    PRIMARY KEY (run_id, method, grp)
);
CREATE TABLE span_examples (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    media_id INTEGER NOT NULL REFERENCES media(id),
    split TEXT NOT NULL,               -- train | validation | test
    label TEXT NOT NULL,               -- span (alt text found in context) | none (alt text not found)
    PRIMARY KEY (run_id, media_id)
);
CREATE TABLE span_metrics (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    split TEXT NOT NULL,               -- train | validation | test
    method TEXT NOT NULL,              -- model | nearest_sentence | figcaption | random
    grp TEXT NOT NULL,                 -- all | exact | normalised | partial | none | figcaption (label kind) | figcaption_truth | conf:0.8-1.0 ...
    n INTEGER NOT NULL,                -- examples
    span_n INTEGER NOT NULL,           -- of which with a true span
    span_em REAL,                      -- exact match on the examples with a true span ("none" scores 0)
    span_iou REAL,                     -- character IoU on the examples with a true span ("none" scores 0)
    none_precision REAL,               -- share of the answers "none" that are right
    none_recall REAL,                  -- share of the true "none" examples answered "none"
    f1 REAL,                           -- macro F1 of the classes span (IoU >= 0.5 counts) and none
    none_share REAL,                   -- share of answers that are "none"
    true_none_share REAL,              -- share of examples whose truth is "none"
    PRIMARY KEY (run_id, split, method, grp)
);
CREATE TABLE span_runs (
    id INTEGER PRIMARY KEY,
    base TEXT NOT NULL,                -- backbone: Hugging Face id or local directory
    params TEXT NOT NULL,              -- JSON: epochs, lr, batch size, max length, stride, iou weight, ...
    seed INTEGER NOT NULL,
    checkpoint TEXT,                   -- directory of the saved model, next to the database
    split_counts TEXT,                 -- JSON: examples and domains per split
    status TEXT NOT NULL DEFAULT 'running', -- running | done | failed
    started_at TEXT NOT NULL,
    finished_at TEXT,
    train_seconds REAL
, none_threshold REAL, best_epoch INTEGER);
CREATE TABLE spans (
    media_id INTEGER NOT NULL REFERENCES media(id),
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    start INTEGER,                     -- character span in pages.text
    "end" INTEGER,
    text TEXT,
    start_prob REAL,
    end_prob REAL,
    confidence REAL,                   -- start_prob * end_prob of the chosen span
    none_prob REAL,                    -- probability of "no description"
    PRIMARY KEY (media_id, run_id)
);
CREATE TABLE text_signals (
    media_id INTEGER NOT NULL REFERENCES media(id), -- the image whose text this is
    source TEXT NOT NULL,              -- alt | span (current_spans text) | figcaption
    signal TEXT NOT NULL,              -- lang | words | chars | stopword_share | special_share | rep_ngram_share | filename_like | title_equal | alt_agreement (span/figcaption vs the alt) | alt_repeats
    version TEXT NOT NULL,             -- how it was computed (a new version adds rows beside the old ones)
    value REAL,                        -- the number (confidence for lang; 1/0 for flags); NULL when it does not apply
    label TEXT,                        -- a category (the language code for lang)
    run_id INTEGER REFERENCES runs(id), -- run that computed it
    span_run INTEGER,                  -- source span: the span_runs id of the prediction it was computed from (a newer prediction replaces the row)
    PRIMARY KEY (media_id, source, signal, version)
);
CREATE VIEW archived_answers AS
SELECT x.id,               -- archived_media row
       x.url_key,          -- canonical URL it answers
       substr(x.mime, 1, instr(x.mime || '/', '/') - 1) AS kind, -- image | audio | video | ... (from the mime)
       x.archive_id, x."offset", x.length, x.inner, x.http_status, x.mime, x.bytes, x.sha256, x.width, x.height
FROM archived_media x
WHERE x.http_status IS NULL OR x.http_status < 300;
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
CREATE VIEW dup_keep AS
SELECT d.method,           -- the dedup method (url | sha256 | phash | clip)
       d.version,          -- its parameters
       m.id AS media_id,   -- a media item kept by it
       m.url_key           -- its image
FROM (SELECT DISTINCT method, version FROM dedup_state WHERE method != 'repeats') d
JOIN media m ON m.kind = 'image'
WHERE NOT EXISTS (SELECT 1 FROM dup_groups g WHERE g.kind = 'media' AND g."key" = CAST(m.id AS TEXT)
                  AND g.method = d.method AND g.version = d.version AND g.keep = 0)
  AND NOT EXISTS (SELECT 1 FROM dup_groups g WHERE g.kind = 'image' AND g."key" = m.url_key
                  AND g.method = d.method AND g.version = d.version AND g.keep = 0);
CREATE VIEW media_archived AS
SELECT m.id AS media_id, a.id AS archived_media_id, a.archive_id, a."offset", a.length, a.inner,
       a.mime, a.sha256, a.width, a.height, a.bytes
FROM media m JOIN archived_media a ON a.url_key = m.url_key;
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
CREATE VIEW media_context AS
SELECT
    m.id AS media_id,
    m.page_id,
    m.kind,
    m.url,
    m.alt,
    substr(p.text, m.ctx_start + 1, m.pos - m.ctx_start) AS text_before,
    substr(p.text, m.pos + 1, m.ctx_end - m.pos) AS text_after
FROM media m JOIN pages p ON p.id = m.page_id
WHERE m.pos IS NOT NULL;
CREATE VIEW media_items AS
SELECT
    m.id AS media_id,       -- the media item (links to its page in wdb serve)
    m.kind,                 -- image | audio | video | embed
    m.tag,                  -- element that held it
    m.url,                  -- resolved URL of the item
    m.alt,                  -- alt text
    m.figcaption,           -- caption of the enclosing <figure>
    p.id AS page_id,        -- page the item is on
    p.url AS page_url,      -- URL of that page
    p.domain,               -- page domain (www. dropped)
    p.lang,                 -- declared page language
    p.http_status,          -- HTTP status of the page capture
    EXISTS (SELECT 1 FROM alt_matches x WHERE x.media_id = m.id) AS alt_in_context, -- 1 when the alt reappears nearby
    EXISTS (SELECT 1 FROM archived_media a WHERE a.url_key = m.url_key) AS archived -- 1 when an archive holds its bytes
FROM media m JOIN pages p ON p.id = m.page_id;
CREATE VIEW optout_media AS
SELECT m.id AS media_id,   -- the media item (every recipe pair of it is excluded)
       coalesce(
         (SELECT o.id FROM optout o WHERE o.kind = 'url' AND o.value = m.url_key),
         (SELECT o.id FROM optout o WHERE o.kind = 'url' AND o.value = coalesce(p.domain, '') || CASE
              WHEN instr(substr(p.url, instr(p.url, '://') + 3), '/') > 0
              THEN substr(substr(p.url, instr(p.url, '://') + 3), instr(substr(p.url, instr(p.url, '://') + 3), '/'))
              ELSE '/' END),
         (WITH RECURSIVE s(d) AS (
              SELECT CASE WHEN instr(substr(m.url_key, 1, instr(m.url_key || '/', '/') - 1), ':') > 0
                     THEN substr(m.url_key, 1, instr(m.url_key, ':') - 1)
                     ELSE substr(m.url_key, 1, instr(m.url_key || '/', '/') - 1) END
              UNION SELECT p.domain
              UNION ALL SELECT substr(d, instr(d, '.') + 1) FROM s WHERE instr(d, '.') > 0)
          SELECT o.id FROM s JOIN optout o ON o.kind = 'domain' AND o.value = s.d ORDER BY o.id LIMIT 1)
       ) AS optout_id      -- the optout row that matches it (URL matches first)
FROM media m JOIN pages p ON p.id = m.page_id
WHERE optout_id IS NOT NULL;
