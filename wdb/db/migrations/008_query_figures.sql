-- wdb schema, part 8: figures the canned queries read instead of scanning page text, and the
-- indexes that serve their ORDER BY. `wdb index` (also `wdb serve`, `wdb ingest --fts`) adds the
-- pages ingested since its last run, a step at a time (wdb/db/indexes.py); the queries refuse to
-- run on figures that lag behind the pages.

-- per-page figures, one row per page, computed once from the page text and its media items
CREATE TABLE page_stats (
    page_id INTEGER PRIMARY KEY REFERENCES pages(id), -- the page
    words INTEGER NOT NULL,            -- spaces in pages.text plus one (the canned queries' word count)
    media INTEGER NOT NULL,            -- media items of any kind
    images INTEGER NOT NULL,           -- image items
    images_in_flow INTEGER NOT NULL,   -- image items in the text flow (media.pos not NULL)
    images_with_alt INTEGER NOT NULL   -- image items with an alt attribute
);
CREATE INDEX page_stats_flow ON page_stats(images_in_flow DESC, page_id, words);

-- the words of each image's alt text, for images with one (alt_pairs filters on it without reading media)
CREATE TABLE alt_words (
    media_id INTEGER PRIMARY KEY REFERENCES media(id), -- the image
    words INTEGER NOT NULL             -- spaces in the trimmed alt text plus one
);

-- pages, images and alt coverage per domain: sums of page_stats by pages.domain
CREATE TABLE domain_stats (
    domain TEXT NOT NULL PRIMARY KEY,  -- pages.domain ('' stands for pages without a domain)
    pages INTEGER NOT NULL,            -- pages of the domain
    images INTEGER NOT NULL,           -- image items on them
    images_with_alt INTEGER NOT NULL   -- image items with an alt attribute
) WITHOUT ROWID;
CREATE INDEX domain_stats_order ON domain_stats(pages DESC, images DESC, domain);

-- one row per distinct media URL of each kind: how many items and pages point at it
CREATE TABLE media_url_stats (
    kind TEXT NOT NULL,                -- image | audio | video | embed
    url TEXT NOT NULL,                 -- media.url
    items INTEGER NOT NULL,            -- media items with that URL
    pages INTEGER NOT NULL,            -- distinct pages holding them
    media_id INTEGER NOT NULL,         -- the first such item (its url_key finds archived bytes)
    PRIMARY KEY (kind, url)
) WITHOUT ROWID;
CREATE INDEX media_url_stats_order ON media_url_stats(kind, items DESC, url);

-- items of one kind in page and document order (context_samples), without a sort
CREATE INDEX media_kind_page ON media(kind, page_id, seq);
