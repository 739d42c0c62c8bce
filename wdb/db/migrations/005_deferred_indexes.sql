-- wdb schema, part 5: lookup indexes on URLs are built after ingest, not during it.
--
-- pages(url) and media(url_key) take keys in random order: once such an index outgrows the page
-- cache, every insert dirties a page of its own, so a batch of 300 pages (6,000 media items)
-- rewrites most of the index at each commit. Built at once with CREATE INDEX (a sort) they cost a
-- fraction of that. `wdb index` (and `wdb serve`) creates them; `wdb ingest` drops them before it
-- writes (wdb/indexes.py). Nothing in ingest reads them.
DROP INDEX IF EXISTS pages_url;
DROP INDEX IF EXISTS media_url_key;
