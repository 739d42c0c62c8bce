-- wdb schema, part 10: quality signals and duplicate groups (wdb signals, wdb dedup).
-- Nothing is deleted for curation: a dataset recipe is plain SQL over these columns.

-- one value per (text, signal, version): language, caption statistics, text agreement, repeats (alt_repeats: distinct images with this alt)
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
CREATE INDEX text_signals_signal ON text_signals(signal, version, source, value);

-- one value per (page, signal, version): language of the page text, normalised declared language
CREATE TABLE page_signals (
    page_id INTEGER NOT NULL REFERENCES pages(id), -- the page
    signal TEXT NOT NULL,              -- lang (fastText on the page text) | declared_lang (pages.lang normalised)
    version TEXT NOT NULL,             -- how it was computed
    value REAL,                        -- confidence (lang); NULL for declared_lang
    label TEXT,                        -- ISO 639 language code (primary subtag, lower case); NULL when none
    run_id INTEGER REFERENCES runs(id), -- run that computed it
    PRIMARY KEY (page_id, signal, version)
);
CREATE INDEX page_signals_signal ON page_signals(signal, version, label);

-- one value per (image, signal, version): size, aspect, format, placeholder, aesthetic, nsfw, URL repeats (distinct pages showing it)
CREATE TABLE image_signals (
    url_key TEXT NOT NULL,             -- images.url_key
    signal TEXT NOT NULL,              -- width | height | min_side | aspect | format | frames | bytes | placeholder | aesthetic | nsfw | url_repeats
    version TEXT NOT NULL,             -- how it was computed (aesthetic: head and clip_models id)
    value REAL,                        -- the number (aspect = long side / short side; 1/0 for placeholder)
    label TEXT,                        -- a category (format: jpeg, png, gif, webp, ...)
    run_id INTEGER REFERENCES runs(id), -- run that computed it
    PRIMARY KEY (url_key, signal, version)
);
CREATE INDEX image_signals_signal ON image_signals(signal, version, value);

-- duplicate groups: every member of a group of two or more, one representative marked keep = 1
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
CREATE INDEX dup_groups_group ON dup_groups(method, version, group_id);

-- what each dedup method last saw: a second run with the same inputs computes nothing
CREATE TABLE dedup_state (
    method TEXT NOT NULL,              -- url | sha256 | phash | clip | repeats
    version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,         -- counts and largest ids of the inputs
    groups INTEGER,                    -- groups found
    members INTEGER,                   -- items in those groups
    run_id INTEGER REFERENCES runs(id),
    PRIMARY KEY (method, version)
);

-- media images kept by each dedup method: the representative of each group, and every image in no group
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
