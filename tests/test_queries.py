"""Canned queries: the rewritten SQL returns the rows of the original on the real corpus, parameters
are typed, SQL errors are one-line WdbErrors, and the figures they read are kept up to date
incrementally by `update_indexes`."""
import sqlite3

import pytest

from conftest import corpus
from wdb.db import open_db
from wdb.db import query as queries
from wdb.db.indexes import figures_behind, update_figures, update_indexes
from wdb.errors import BadParameter, QueryError, WdbError
from wdb.ingest import ingest

# The queries as they were before they read precomputed figures: the reference for their meaning.
OLD = {
    "alt_pairs": """
        SELECT m.id AS media_id, m.url AS image_url, m.alt AS alt_text, p.url AS page_url, p.domain
        FROM media m JOIN pages p ON p.id = m.page_id
        WHERE m.kind = 'image' AND m.alt IS NOT NULL
          AND (length(trim(m.alt)) - length(replace(trim(m.alt), ' ', '')) + 1) >= CAST(:min_words AS INTEGER)
        ORDER BY m.id""",
    "alt_in_context": """
        SELECT m.id AS media_id, m.url AS image_url, m.alt AS alt_text, x.kind AS match_kind, x.score,
               x.side, substr(p.text, x.start + 1, x."end" - x.start) AS matched_text, p.url AS page_url
        FROM alt_matches x JOIN media m ON m.id = x.media_id JOIN pages p ON p.id = m.page_id
        WHERE x.score >= CAST(:min_score AS REAL)
        ORDER BY m.id""",
    "context_samples": """
        SELECT c.media_id, p.url AS page_url, m.seq, c.kind, c.url, c.alt, c.text_before, c.text_after
        FROM media_context c JOIN media m ON m.id = c.media_id JOIN pages p ON p.id = c.page_id
        WHERE c.kind = :kind
        ORDER BY c.page_id, m.seq""",
    "domains": """
        SELECT p.domain, count(DISTINCT p.id) AS pages, count(m.id) AS images, count(m.alt) AS images_with_alt,
               round(1.0 * count(m.alt) / max(count(m.id), 1), 3) AS alt_coverage
        FROM pages p LEFT JOIN media m ON m.page_id = p.id AND m.kind = 'image'
        GROUP BY p.domain
        ORDER BY pages DESC, images DESC""",
    "interleaved_pages": """
        WITH counted AS (
            SELECT p.id, p.url, p.domain, p.title,
                   length(p.text) - length(replace(p.text, ' ', '')) + 1 AS words,
                   (SELECT count(*) FROM media m WHERE m.page_id = p.id AND m.kind = 'image' AND m.pos IS NOT NULL)
                       AS images
            FROM pages p)
        SELECT c.id AS page_id, c.url AS page_url, c.domain, c.title, c.words, c.images,
               (SELECT json_group_array(url) FROM (
                    SELECT m.url FROM media m WHERE m.page_id = c.id AND m.kind = 'image' AND m.pos IS NOT NULL
                    ORDER BY m.seq LIMIT CAST(:max_images AS INTEGER))) AS first_images
        FROM counted c
        WHERE c.images >= CAST(:min_images AS INTEGER) AND c.words >= CAST(:min_words AS INTEGER)
        ORDER BY c.images DESC, c.id""",
    "media_url_counts": """
        SELECT m.url, count(*) AS items, count(DISTINCT m.page_id) AS pages,
               EXISTS (SELECT 1 FROM archived_media a WHERE a.url_key = m.url_key) AS archived
        FROM media m WHERE m.kind = :kind
        GROUP BY m.url
        ORDER BY items DESC, m.url""",
}
KINDS = ("image", "audio", "video", "embed")
CASES = {
    "alt_pairs": [{"min_words": w} for w in (1, 3, 5, 12)],
    "alt_in_context": [{"min_score": s} for s in (0, 0.6, 0.9, 1)],
    "context_samples": [{"kind": k} for k in KINDS],
    "domains": [{}],
    "interleaved_pages": [{"min_images": i, "min_words": w, "max_images": n}
                          for i, w, n in ((1, 1, 1), (3, 100, 5), (10, 500, 3), (40, 0, 50))],
    "media_url_counts": [{"kind": k} for k in KINDS],
}


def rows(conn, name, params):
    cols, it = queries.run(conn, queries.find(name), {k: str(v) for k, v in params.items()})
    return cols, list(it)


def test_every_query_returns_the_rows_of_the_original(db):
    assert set(CASES) | {"best_descriptions"} == {q.name for q in queries.all_queries()}
    for name, cases in CASES.items():
        for params in cases:
            cols, got = rows(db, name, params)
            cur = db.execute(OLD[name], params)
            want = cur.fetchall()
            assert cols == [d[0] for d in cur.description], name
            if name == "domains":  # the original left ties of (pages, images) in no particular order
                want.sort(key=lambda r: (-r[1], -r[2], r[0] or ""))
            assert got == want, (name, params)
        assert any(rows(db, name, p)[1] for p in cases), name  # not only empty answers


def test_queries_do_not_scan_for_their_first_page(db):
    """Every plan serves its ORDER BY from an index or the table's own order: no temporary sort."""
    for q in queries.all_queries():
        params = {k: queries.convert(q, k, CASES.get(q.name, [{}])[0].get(k, "0.5")) for k in q.params}
        plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + q.sql, params))
        assert "TEMP B-TREE" not in plan, (q.name, plan)
        assert "SCAN p" not in plan and "SCAN pages" not in plan, (q.name, plan)


def _copy(src_path, dst_path):
    src, dst = sqlite3.connect(src_path), sqlite3.connect(dst_path)
    src.backup(dst)
    src.close()
    return dst


def test_best_descriptions_follow_current_spans(corpus_db, tmp_path):
    conn = _copy(corpus_db[0], tmp_path / "spans.db")
    images = conn.execute("SELECT id, pos FROM media WHERE kind = 'image' ORDER BY id").fetchall()
    # run 1 (done) predicted a third of the images, run 2 (still running) a fifth: run 2 is current
    # where it predicted, run 1 elsewhere, whatever the runs' status
    for run, status in ((1, "done"), (2, "running")):
        conn.execute("INSERT INTO span_runs (id, base, params, seed, status, started_at) VALUES (?, 'b', '{}', 0, ?, '')",
                     (run, status))
    spans = {}
    for i, (mid, pos) in enumerate(images):
        for run, every in ((1, 3), (2, 5)):
            if i % every == 0:
                start = None if i % 7 == 0 else (pos or 0)
                conf = ((i * 37 + run * 11) % 100) / 100
                text = None if start is None else f"span {run} of {mid}"
                conn.execute("INSERT INTO spans (media_id, run_id, start, \"end\", text, confidence) VALUES (?,?,?,?,?,?)",
                             (mid, run, start, None if start is None else start + 5, text, conf))
                spans[mid] = (start, text, conf)  # the last run written is the newest
    conn.commit()
    alt = dict(conn.execute("SELECT id, alt FROM media WHERE kind = 'image'"))
    page = dict(conn.execute("SELECT m.id, p.url FROM media m JOIN pages p ON p.id = m.page_id"))
    url = dict(conn.execute("SELECT id, url FROM media"))
    for t in (0.0, 0.5, 0.9):
        want = []
        for mid, _ in images:
            start, text, conf = spans.get(mid, (None, None, None))
            use = start is not None and conf >= t
            if use or alt[mid] is not None:
                want.append((mid, url[mid], text if use else alt[mid], "span" if use else "alt", conf, alt[mid],
                             page[mid]))
        cols, got = rows(conn, "best_descriptions", {"min_confidence": t})
        assert cols == ["media_id", "image_url", "description", "source", "confidence", "alt", "page_url"]
        assert got == want, t
        assert {r[3] for r in got} == {"span", "alt"}


def test_parameters_are_typed(db):
    alt_pairs = queries.find("alt_pairs")
    with pytest.raises(BadParameter, match=r"^min_words must be an integer, got 'five'$"):
        queries.run(db, alt_pairs, {"min_words": "five"})
    for bad in ("3.5", "", "3 words"):
        with pytest.raises(BadParameter):
            queries.run(db, alt_pairs, {"min_words": bad})
    assert rows(db, "alt_pairs", {"min_words": " 3 "}) == rows(db, "alt_pairs", {"min_words": 3})
    for bad in ("high", "nan", "inf"):
        with pytest.raises(BadParameter, match="min_score must be a number"):
            queries.run(db, queries.find("alt_in_context"), {"min_score": bad})
    with pytest.raises(BadParameter, match="^kind must be one of image, audio, video, embed, got 'picture'$"):
        queries.run(db, queries.find("media_url_counts"), {"kind": "picture"})
    with pytest.raises(BadParameter, match="needs -p min_words VALUE"):
        queries.run(db, alt_pairs, {})
    with pytest.raises(BadParameter, match="no parameter min_word; it takes min_words"):
        queries.run(db, alt_pairs, {"min_words": "3", "min_word": "3"})
    types = {q.name: {p: q.param_type(p) for p in q.params} for q in queries.all_queries()}
    assert types["interleaved_pages"] == {"min_images": "integer", "min_words": "integer", "max_images": "integer"}
    assert types["best_descriptions"] == {"min_confidence": "real"}


def test_types_inferred_from_casts_in_any_sql_file(db, tmp_path):
    f = tmp_path / "mine.sql"
    f.write_text("-- title: Mine\nSELECT id FROM pages WHERE id <= CAST(:n AS INTEGER) AND url LIKE :pattern\n"
                 "AND id >= CAST(:low AS REAL)")
    q = queries.find(str(f))
    assert {p: q.param_type(p) for p in q.params} == {"n": "integer", "pattern": "text", "low": "real"}
    with pytest.raises(BadParameter, match="n must be an integer, got 'x'"):
        queries.run(db, q, {"n": "x", "pattern": "%", "low": "0"})
    assert len(list(queries.run(db, q, {"n": "3", "pattern": "%", "low": "0"})[1])) == 3
    f.write_text("-- params: n integr\nSELECT :n")
    with pytest.raises(QueryError, match="bad -- params: entry 'n integr'"):
        queries.find(str(f))


def test_sql_errors_are_one_line_wdb_errors(db, tmp_path):
    cases = {
        "missing.sql": ("SELECT * FROM no_such_table", "no such table: no_such_table"),
        "write.sql": ("DELETE FROM pages", "readonly"),
        # fails on the third row, while the rows are being read
        "late.sql": ("SELECT CASE WHEN value > 2 THEN json('{bad') ELSE value END FROM json_each('[1, 2, 3]')",
                     "malformed JSON"),
    }
    for fname, (sql, words) in cases.items():
        (tmp_path / fname).write_text(sql)
        with pytest.raises(WdbError) as err:
            cols, it = queries.run(db, queries.find(str(tmp_path / fname)), {})
            list(it)
        assert isinstance(err.value, QueryError) and words in str(err.value), fname
        assert "\n" not in str(err.value) and str(err.value).startswith(f"query {fname[:-4]} failed: ")
    assert db.execute("SELECT count(*) FROM pages").fetchone()[0] > 0  # the DELETE wrote nothing


def _figures(conn) -> dict:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("page_stats", "alt_words", "domain_stats", "media_url_stats")}


def _recomputed(conn) -> dict:
    """The figures computed from scratch by plain aggregates, independently of indexes.py."""
    pages = conn.execute("""
        SELECT p.id, length(p.text) - length(replace(p.text, ' ', '')) + 1,
               (SELECT count(*) FROM media m WHERE m.page_id = p.id),
               (SELECT count(*) FROM media m WHERE m.page_id = p.id AND kind = 'image'),
               (SELECT count(*) FROM media m WHERE m.page_id = p.id AND kind = 'image' AND pos IS NOT NULL),
               (SELECT count(*) FROM media m WHERE m.page_id = p.id AND kind = 'image' AND alt IS NOT NULL)
        FROM pages p ORDER BY 1""").fetchall()
    alts = conn.execute("SELECT id, length(trim(alt)) - length(replace(trim(alt), ' ', '')) + 1 FROM media "
                        "WHERE kind = 'image' AND alt IS NOT NULL ORDER BY 1").fetchall()
    domains = sorted((d or "", n, i, a) for d, n, i, a, _ in conn.execute(OLD["domains"]))
    urls = conn.execute("SELECT kind, url, count(*), count(DISTINCT page_id), min(id) FROM media "
                        "GROUP BY kind, url ORDER BY 1, 2").fetchall()
    return {"page_stats": pages, "alt_words": alts, "domain_stats": domains, "media_url_stats": urls}


class FailingURLStats:
    """A connection whose n-th media_url_stats step fails: an update interrupted mid-way."""

    def __init__(self, conn, fail_at):
        self.conn, self.left = conn, fail_at

    def execute(self, sql, *args):
        if "INSERT INTO media_url_stats" in sql:
            self.left -= 1
            if self.left == 0:
                raise sqlite3.OperationalError("interrupted")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_figures_are_incremental_and_resumable(tmp_path):
    conn = open_db(tmp_path / "f.db")
    ingest(conn, [str(corpus("node-warc-tests/books.toscrape.warc")), str(corpus("aut-tests/example.warc.gz"))],
           workers=0, progress=False, quiet=True)
    pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    assert pages >= 3 and figures_behind(conn) == pages
    with pytest.raises(QueryError, match=rf"{pages:,} pages are not in them yet: run `wdb index`"):
        queries.run(conn, queries.find("domains"), {})
    # interrupted at the second step of one page: the first step is kept whole, nothing of the second
    with pytest.raises(sqlite3.OperationalError):
        update_figures(FailingURLStats(conn, 2), step=1)
    part = _figures(conn)
    assert len(part["page_stats"]) == 1 and figures_behind(conn) == pages - 1
    assert sum(r[1] for r in part["domain_stats"]) == 1
    assert sum(r[2] for r in part["media_url_stats"]) == part["page_stats"][0][2]  # that page's items
    assert update_figures(conn, step=2) == pages - 1  # resumes after the kept step
    assert _figures(conn) == _recomputed(conn)
    assert update_figures(conn) == 0 and _figures(conn) == _recomputed(conn)  # twice adds nothing
    assert list(queries.run(conn, queries.find("domains"), {})[1])
    # pages ingested later are added by `update_indexes`, and only they
    ingest(conn, [str(corpus("ipwb-samples/sample-1.warc.gz"))], workers=0, progress=False, quiet=True)
    more = conn.execute("SELECT count(*) FROM pages").fetchone()[0] - pages
    assert more > 0 and figures_behind(conn) == more
    update_indexes(conn, figure_step=2)
    assert figures_behind(conn) == 0 and _figures(conn) == _recomputed(conn)
    assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'page_stats'").fetchone()[0] >= 1  # analyzed


def test_stats_from_figures_equal_the_counts(db):
    from wdb.db.stats import FROM_FIGURES, QUERIES, stats

    assert figures_behind(db) == 0
    got = stats(db)
    for k in FROM_FIGURES:
        assert got[k] == db.execute(QUERIES[k]).fetchone()[0] > 0, k
