-- wdb schema, part 2: views for browsing.

-- one row per media item with the page fields people filter on (domain, language, status)
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
