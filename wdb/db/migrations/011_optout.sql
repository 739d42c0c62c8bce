-- wdb schema, part 11: opt-outs (wdb optout). An opted-out URL or domain is a row; every recipe
-- excludes the pairs it matches (wdb.recipes.select applies the view optout_media to every recipe).
-- Nothing is deleted: the pages, items and bytes stay, and dropping an entry lets them back in.

-- one row per opted-out URL or domain, with the file and line it came from
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

-- lines of an opt-out file that are neither a URL nor a domain (reported, never fatal)
CREATE TABLE optout_rejects (
    file TEXT NOT NULL,                -- absolute path of the file
    line INTEGER NOT NULL,             -- line number
    raw TEXT NOT NULL,                 -- the line (cut at 1,000 characters)
    reason TEXT NOT NULL,              -- why it is not a URL or a domain
    run_id INTEGER REFERENCES runs(id), -- the run that read it
    PRIMARY KEY (file, line, raw)
);

-- media items an opt-out matches: image URL or page URL equal to an opted-out URL, or image host or page domain equal to (or under) an opted-out domain
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
