-- wdb schema, part 7: where on the page each media item and each run of text is, placeholder
-- sources, rendered size.
--
-- Nothing is deleted as boilerplate: every item is labelled with its page region, and recipes
-- choose (`WHERE region = 'main'` keeps what an OBELICS-style extractor keeps, with the images of
-- lists and figures it would have lost). The region comes from the item's open ancestors: their
-- tags (header, footer, nav, aside, form, main, article, menu), role attributes (banner,
-- navigation, contentinfo, complementary, search, main) and the words of their class names and ids
-- (site-footer, site-info, main-nav, menu-item, sidebar, widget, search-form, entry-content, ...;
-- state classes such as has-sidebar or nav-open are ignored); the innermost labelled ancestor wins,
-- except that content labels never relabel boilerplate around them and an article's own header or
-- footer stays main (wdb/html/_scan.c, "page regions").
ALTER TABLE media ADD COLUMN region TEXT;          -- main | header | nav | footer | aside | form | menu | unknown (no labelled ancestor on a page that has a <main>/<article>; on a page without one such items are main); NULL for og:image
ALTER TABLE media ADD COLUMN placeholder INTEGER NOT NULL DEFAULT 0; -- 0: src is the image; 1: src was a placeholder (data: URI, spacer/blank/1x1 file, a 1x1 box, a src shared by several items) and url is the real candidate from a lazy-loading data-* attribute or srcset; 2: only the placeholder was found: url is the placeholder and alt, title, figcaption are not kept
ALTER TABLE media ADD COLUMN render_width INTEGER;  -- rendered width in CSS px: inline style width:Npx, else the width attribute
ALTER TABLE media ADD COLUMN render_height INTEGER; -- rendered height in CSS px: inline style height:Npx, else the height attribute
ALTER TABLE pages ADD COLUMN regions TEXT;         -- the region of each run of pages.text, as JSON [[start, region], ...]: a run goes from its start to the next one's (the last to the end); regions as media.region
