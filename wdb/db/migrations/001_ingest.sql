-- wdb schema, part 1: archives, pages, media and where they came from.

-- one row per command run: what it was asked, what it did, how long it took
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    params TEXT NOT NULL,              -- JSON: the command's parameters
    counters TEXT,                     -- JSON: what the run did
    status TEXT NOT NULL DEFAULT 'running', -- running | done | failed (interrupted runs stay 'running')
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seconds REAL
);

-- one row per archive file; identity decides "already ingested"
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
);

-- an archive is read in byte ranges; pos/skip is the exact resume point, written in the same
-- transaction as the rows read before it
CREATE TABLE archive_chunks (
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    start INTEGER NOT NULL,
    "end" INTEGER,                     -- NULL: to the end of the file
    pos INTEGER NOT NULL,              -- offset of the gzip member (or record) to resume at
    skip INTEGER NOT NULL DEFAULT 0,   -- records of that member already stored
    status TEXT NOT NULL DEFAULT 'pending', -- pending | done | failed
    PRIMARY KEY (archive_id, start)
);

-- one row per HTML capture (response or resource record)
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
);
CREATE INDEX pages_archive ON pages(archive_id, "offset");
CREATE INDEX pages_url ON pages(url);
CREATE INDEX pages_domain ON pages(domain);

-- one row per image, audio, video or embed item on a page, in page order
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
    ctx_end INTEGER,                   -- end of the context window after
    UNIQUE (page_id, seq)
);
CREATE INDEX media_url_key ON media(url_key);
CREATE INDEX media_kind ON media(kind);

-- every raw URL attribute that led to a media item (src, srcset candidates, lazy attributes, ...)
CREATE TABLE media_urls (
    media_id INTEGER NOT NULL REFERENCES media(id),
    attr TEXT NOT NULL,
    raw TEXT NOT NULL,
    url TEXT,                          -- resolved, NULL when skipped (javascript:, data:, broken)
    descriptor TEXT                    -- srcset descriptor (300w, 2x)
);
CREATE INDEX media_urls_media ON media_urls(media_id);

-- image/audio/video records stored inside the archives: pointers, not copies
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
CREATE INDEX archived_media_url_key ON archived_media(url_key);

-- items whose alt text reappears in the text around them: weak labels for the span extractor
CREATE TABLE alt_matches (
    media_id INTEGER PRIMARY KEY REFERENCES media(id),
    side TEXT NOT NULL,                -- before | after
    start INTEGER NOT NULL,            -- character span in pages.text
    "end" INTEGER NOT NULL,
    kind TEXT NOT NULL,                -- exact | normalised | partial
    score REAL NOT NULL
);

-- every problem met while reading: one row each, also printed as one line on stderr
CREATE TABLE problems (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    archive_id INTEGER REFERENCES archives(id),
    "offset" INTEGER,
    url TEXT,
    kind TEXT NOT NULL,                -- e.g. short_record, capped, corrupt_gzip, worker_crash
    message TEXT NOT NULL
);
CREATE INDEX problems_archive ON problems(archive_id, kind);

-- the text before and after each media item: computed from the page text, never copied
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

-- media items answered by a record inside an ingested archive
CREATE VIEW media_archived AS
SELECT m.id AS media_id, a.id AS archived_media_id, a.archive_id, a."offset", a.length, a.inner,
       a.mime, a.sha256, a.width, a.height, a.bytes
FROM media m JOIN archived_media a ON a.url_key = m.url_key;

CREATE VIRTUAL TABLE media_fts USING fts5(alt, title, figcaption, content="media", content_rowid='id');
CREATE VIRTUAL TABLE pages_fts USING fts5(title, text, content="pages", content_rowid='id');
