"""Built-in recipes on real data: COCO photos with their human captions as alt texts (some
re-encoded or resized copies, some in header/footer regions, a French, a short and a hostile alt)
in a WARC written here, plus the real books.toscrape capture (20 archived covers). The database is
ingested, fetched from the archives, given signals, phash groups, span predictions and CLIP scores
from a tiny random open_clip model by the real code; each recipe's pairs are then compared with an
independent Python computation of the rule it cites over the same rows."""
import io
import json
import math
import re

import pytest
from click.testing import CliRunner

from conftest import CORPUS, coco_caption_lists, coco_photos, corpus
from warcs import gz_members, http
from wdb import recipes
from wdb.cli import cli
from wdb.db import open_db
from wdb.errors import BadParameter
from wdb.warc.write import warc_record

COCO = CORPUS / "coco-mini"
HOST = "http://photos.example.org"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def _jpeg(im, quality=90) -> bytes:
    b = io.BytesIO()
    im.save(b, "JPEG", quality=quality)
    return b.getvalue()


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def build(folder):
    """The database described above; returns (db path, tiny model name)."""
    from PIL import Image

    from conftest import tiny_clip
    from wdb.curate import DedupSettings, SignalsSettings, dedup, signals
    from wdb.fetch import FetchSettings, fetch
    from wdb.ingest import ingest
    from wdb.score import ScoreSettings, score

    files, caps = coco_photos(32), coco_caption_lists()
    images, figs = {}, []
    for f in files[:24]:
        images[f"/c/{f.name}"] = f.read_bytes()
        figs.append(f'<figure><img src="{HOST}/c/{f.name}" alt="{_esc(caps[f.name][0])}">'
                    f'<figcaption>{_esc(caps[f.name][1])}</figcaption></figure>')
    a = Image.open(files[0]).convert("RGB")
    w, h = a.size
    images["/dup/a-q40.jpg"] = _jpeg(a, 40)                        # phash duplicate of /c/<first>
    images["/dup/a-half.jpg"] = _jpeg(a.resize((w // 2, h // 2)))   # ... and a resized one
    images["/small.jpg"] = _jpeg(Image.open(files[24]).convert("RGB").resize((150, 110)))  # min side < 200
    images["/wide.jpg"] = _jpeg(Image.open(files[25]).convert("RGB").crop((0, 0, w, max(60, w // 4 - 10))))  # aspect > 3
    for p, k in (("/fr.jpg", 26), ("/short.jpg", 27), ("/header.jpg", 28), ("/footer.jpg", 29), ("/two.jpg", 30),
                 ("/hostile.jpg", 31)):
        images[p] = files[k].read_bytes()
    odd = (f'<img src="{HOST}/dup/a-q40.jpg" alt="{_esc(caps[files[0].name][2])}">'
           f'<img src="{HOST}/dup/a-half.jpg" alt="{_esc(caps[files[0].name][3])}">'
           f'<img src="{HOST}/small.jpg" alt="{_esc(caps[files[24].name][0])}">'
           f'<img src="{HOST}/wide.jpg" alt="{_esc(caps[files[25].name][0])}">'
           f'<img src="{HOST}/fr.jpg" alt="Un chat noir dort sur le canapé du salon, près de la fenêtre">'
           f'<img src="{HOST}/short.jpg" alt="cat"><img src="{HOST}/two.jpg" alt="Red buses">'
           f'<img src="{HOST}/hostile.jpg" alt="{_esc(HOSTILE)}">'
           # the second photo again with its alt: the same pair, counted once (a third showing with
           # another alt would make the src look like a lazy-loading placeholder to extraction)
           f'<img src="{HOST}/c/{files[1].name}" alt="{_esc(caps[files[1].name][0])}">')
    page = (f"<html lang='en'><head><title>Street photos</title></head><body>"
            f"<header><img src='{HOST}/header.jpg' alt='{_esc(caps[files[28].name][0])}'></header>"
            f"<main><p>Photos from the street, taken this morning by our readers.</p>{''.join(figs)}{odd}</main>"
            f"<footer><img src='{HOST}/footer.jpg' alt='{_esc(caps[files[29].name][0])}'></footer></body></html>")
    recs = [warc_record("response", f"{HOST}/street", http(page.encode()), None, "2024-05-18T01:58:10Z")]
    recs += [warc_record("response", f"{HOST}{p}", http(b, "image/jpeg"), None, "2024-05-18T01:58:11Z")
             for p, b in images.items()]
    (folder / "photos.warc.gz").write_bytes(gz_members(recs))
    db = folder / "r.db"
    conn = open_db(db)
    ingest(conn, [str(folder / "photos.warc.gz"), str(corpus("node-warc-tests/books.toscrape.warc"))],
           workers=0, progress=False, quiet=True)
    pending = conn.execute("SELECT count(DISTINCT m.url_key) FROM media m WHERE m.kind = 'image' AND NOT EXISTS "
                           "(SELECT 1 FROM archived_answers x WHERE x.url_key = m.url_key)").fetchone()[0]
    assert pending == 0, "every image is archived: fetch makes no request"
    fetch(conn, FetchSettings(), progress=False, log=io.StringIO())
    signals(conn, SignalsSettings(families=("lang", "stats", "image")), progress=False)
    dedup(conn, DedupSettings(by=("phash",)), progress=False)
    # span predictions for some photos: a figcaption-like text at confidences 0.2 .. 0.9
    with conn:
        conn.execute("INSERT INTO span_runs (id, base, params, seed, started_at) VALUES (1, 'test', '{}', 0, '')")
        rows = conn.execute("SELECT id, figcaption FROM media WHERE figcaption IS NOT NULL ORDER BY id").fetchall()
        for k, (mid, fc) in enumerate(rows[:16]):
            conn.execute("INSERT INTO spans (media_id, run_id, start, \"end\", text, confidence) VALUES (?, 1, 0, 1, ?, ?)",
                         (mid, fc, 0.2 + 0.05 * k))
    model = tiny_clip(folder / "tiny", 0)
    score(conn, ScoreSettings(model=model, pretrained="", sources=("alt", "span"), device="cpu", workers=0),
          log=io.StringIO())
    conn.close()
    return db, model


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("recipes"))


def pairs(conn, name, **params):
    cols, rows = recipes.select(conn, recipes.find(name), params)
    return [dict(zip(cols, r)) for r in rows]


def keys(rows):
    return {(r["media_id"], r["text_source"]) for r in rows}


def first_items(conn) -> set[int]:
    """Media ids that are the first showing of their (page, image, alt): a repeat is the same pair."""
    seen, first = set(), set()
    for mid, page, key, alt in conn.execute("SELECT id, page_id, url_key, alt FROM media WHERE kind = 'image' ORDER BY id"):
        if (page, key, alt) not in seen:
            seen.add((page, key, alt))
            first.add(mid)
    return first


def images_with_alt(conn, first_only: bool = True):
    first = first_items(conn)
    return [r for r in conn.execute("SELECT m.id, m.alt, m.url_key, m.region FROM media m WHERE m.kind = 'image' "
                                    "AND m.alt IS NOT NULL AND trim(m.alt) != ''").fetchall() if r[0] in first or not first_only]


def sig(conn, table, key, signal):
    """{key: (value, label)} of the most recently computed version of a signal (the version of the
    row of the latest run; computed here, in Python)."""
    col = "media_id" if table == "text_signals" else "url_key"
    extra = " AND source = 'alt'" if table == "text_signals" else ""
    rows = conn.execute(f"SELECT {col}, version, value, label, run_id FROM {table} WHERE signal = ?{extra}",
                        (signal,)).fetchall()
    v = max(rows, key=lambda r: (r[4] or 0, r[1]))[1]
    return {r[0]: (r[2], r[3]) for r in rows if r[1] == v}


def model_id(conn, model):
    return conn.execute("SELECT max(id) FROM clip_models WHERE name = ?", (model,)).fetchone()[0]


def test_datacomp_basic_equals_its_rule_computed_in_python(built):
    db, _ = built
    conn = open_db(db)
    lang = sig(conn, "text_signals", "media_id", "lang")
    size = {k: (w, h) for k, w, h in conn.execute("SELECT url_key, width, height FROM images WHERE status = 'ok'")}
    want = set()
    for mid, alt, key, _ in images_with_alt(conn):
        w, h = size.get(key, (0, 0))
        if (lang.get(mid, (0, None))[1] == "en" and len(alt.split()) > 2 and len(alt) > 5
                and min(w, h) >= 200 and max(w, h) / min(w, h) <= 3.0):
            want.add((mid, "alt"))
    got = pairs(conn, "datacomp_basic")
    assert keys(got) == want
    assert 15 < len(want) < len(images_with_alt(conn))  # the rule keeps some and drops some
    assert len(got) == len(keys(got))                   # one row per pair
    dropped = {r[1] for r in images_with_alt(conn) if (r[0], "alt") not in want}
    assert {"cat", "Red buses", "Un chat noir dort sur le canapé du salon, près de la fenêtre"} <= dropped
    shown = conn.execute("SELECT m.id, m.alt FROM media m WHERE m.url_key = (SELECT url_key FROM media WHERE id = "
                         "(SELECT min(id) FROM media WHERE url LIKE '%/c/%' AND id > (SELECT min(id) FROM media "
                         "WHERE url LIKE '%/c/%')))").fetchall()
    kept = [m for m, _ in shown if (m, "alt") in want]
    assert len(shown) == 2 and len({a for _, a in shown}) == 1 and len(kept) == 1  # the repeat counts once
    conn.close()


def test_laion_and_clip_top_equal_their_rules(built):
    db, model = built
    conn = open_db(db)
    mid = model_id(conn, model)
    scores = dict(conn.execute("SELECT media_id, score FROM clip_scores WHERE text_source = 'alt' AND model_id = ?",
                               (mid,)).fetchall())
    alts = {r[0] for r in images_with_alt(conn)}
    lang = sig(conn, "text_signals", "media_id", "lang")
    med = sorted(scores[m] for m in alts if m in scores)[len(scores) // 2]
    want = {(m, "alt") for m in alts if m in scores and scores[m] >= med and lang.get(m, (0, None))[1] == "en"}
    got = pairs(conn, "laion2b_en", model=model, min_score=str(med))
    assert keys(got) == want and 5 < len(want) < len(alts)
    assert all(abs(r["score"] - scores[r["media_id"]]) < 1e-12 for r in got)
    assert pairs(conn, "laion2b_en") == []  # the default model (OpenAI ViT-B/32) scored nothing here
    pool = sorted((m for m in alts if m in scores), key=lambda m: (-scores[m], m))
    for pct in (30, 12.5, 100):
        top = pairs(conn, "clip_top", model=model, percent=str(pct))
        assert keys(top) == {(m, "alt") for m in pool[:math.ceil(len(pool) * pct / 100)]}
    conn.close()


def _phash_keep(conn):
    """The kept image keys of phash groups at distance 5, computed with union-find over all pairs."""
    rows = conn.execute("SELECT url_key, phash, coalesce(width, 0) * coalesce(height, 0) FROM images "
                        "WHERE status = 'ok' AND phash IS NOT NULL ORDER BY url_key").fetchall()
    parent = list(range(len(rows)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if bin(int(rows[i][1], 16) ^ int(rows[j][1], 16)).count("1") <= 5:
                parent[root(i)] = root(j)
    groups: dict[int, list] = {}
    for i, r in enumerate(rows):
        groups.setdefault(root(i), []).append(r)
    keep = {min(g, key=lambda r: (-r[2], r[0]))[0] for g in groups.values()}
    return keep, {r[0] for r in rows}


def test_mmc4_dedup_keeps_one_image_per_phash_group(built):
    db, _ = built
    conn = open_db(db)
    keep, hashed = _phash_keep(conn)
    assert len(hashed) - len(keep) >= 2  # the planted re-encode and resize are grouped away
    want = {(m, "alt") for m, _, key, _ in images_with_alt(conn) if key in keep}
    assert keys(pairs(conn, "mmc4_dedup")) == want
    conn.close()


def test_described_picks_the_best_text_then_clip_dedup_and_regions(built):
    db, model = built
    conn = open_db(db)
    keep, _ = _phash_keep(conn)
    mid = model_id(conn, model)
    scores = {(m, s): v for m, s, v in conn.execute("SELECT media_id, text_source, score FROM clip_scores "
                                                      "WHERE model_id = ?", (mid,))}
    spans = dict(conn.execute("SELECT media_id, text FROM spans WHERE confidence >= 0.5").fetchall())
    assert 0 < len(spans) < 16
    thr = sorted(scores.values())[len(scores) // 3]
    first = first_items(conn)
    rows = [r for r in conn.execute("SELECT id, alt, url_key, region FROM media WHERE kind = 'image'") if r[0] in first]
    want = {}
    for m, alt, key, region in rows:
        text, src = (spans[m], "span") if m in spans else (alt, "alt")
        if not text or not text.strip() or key not in keep or region in ("header", "nav", "footer", "menu"):
            continue
        if scores.get((m, src), -9) >= thr:
            want[(m, src)] = text
    got = pairs(conn, "described", model=model, min_score=str(thr))
    assert {(r["media_id"], r["text_source"]): r["text"] for r in got} == want
    assert {s for _, s in want} == {"alt", "span"}
    # no scores for the chosen model: the CLIP rule keeps every pair (documented)
    loose = pairs(conn, "described", model="no-such-model")
    assert keys(loose) >= set(want) and len(loose) > len(got)
    # boilerplate regions: the header and footer photos are dropped unless drop_regions says otherwise
    regions = {r["region"] for r in pairs(conn, "described", model="none", drop_regions="nav")}
    assert {"header", "footer"} <= regions and "header" not in {r["region"] for r in loose}
    conn.close()


def test_every_recipe_lists_a_pair_once_even_with_two_signal_versions(built, tmp_path):
    import shutil

    db, model = built
    copy = tmp_path / "v.db"
    shutil.copy(db, copy)
    conn = open_db(copy)
    with conn:  # a second version of every text and image signal, with other values
        conn.execute("INSERT INTO text_signals (media_id, source, signal, version, value, label) SELECT media_id, "
                     "source, signal, version || 'x', value, label FROM text_signals")
        conn.execute("INSERT INTO image_signals (url_key, signal, version, value, label) SELECT url_key, signal, "
                     "version || 'x', value, label FROM image_signals")
    for r in recipes.builtin():
        rows = pairs(conn, r.name, **({"model": model} if "model" in r.params else {}))
        assert len(rows) == len(keys(rows)), r.name
        assert [x["media_id"] for x in rows] == sorted(x["media_id"] for x in rows), r.name  # the recipe's order
    conn.close()


def test_a_recipe_reads_the_most_recently_computed_signal_version(built, tmp_path):
    """Version 10 of a signal is newer than version 9 (the greatest string, "img.9", is not the
    newest): the recipe follows the run that computed it last."""
    import shutil

    db, _ = built
    copy = tmp_path / "v10.db"
    shutil.copy(db, copy)
    conn = open_db(copy)
    before = keys(pairs(conn, "datacomp_basic"))
    assert before
    with conn:
        conn.execute("UPDATE image_signals SET version = 'img.9' WHERE signal = 'min_side'")
        run = conn.execute("INSERT INTO runs (command, params, status, started_at) VALUES "
                           "('signals', '{}', 'done', '2026-12-02T00:00:00Z')").lastrowid
        # version 10 says every image is too small: datacomp_basic (min side >= 200) keeps none
        conn.execute("INSERT INTO image_signals (url_key, signal, version, value, label, run_id) SELECT url_key, "
                     "signal, 'img.10', 10, label, ? FROM image_signals WHERE signal = 'min_side'", (run,))
    assert keys(pairs(conn, "datacomp_basic")) == set()
    assert sig(conn, "image_signals", "url_key", "min_side") == {
        k: (10.0, label) for k, label in conn.execute("SELECT url_key, label FROM image_signals WHERE version = 'img.10'")}
    with conn:  # the older version computed again, last: it is the current one again
        again = conn.execute("INSERT INTO runs (command, params, status, started_at) VALUES "
                             "('signals', '{}', 'done', '2026-12-02T00:01:00Z')").lastrowid
        conn.execute("UPDATE image_signals SET run_id = ? WHERE version = 'img.9'", (again,))
    assert keys(pairs(conn, "datacomp_basic")) == before
    conn.close()


def test_the_current_version_of_a_signal_is_one_index_seek(built):
    """The lookup the recipes make per signal (migrations/016_signal_versions.sql), on each signal
    table and as each built-in recipe writes it: the planner answers it from the (signal, run_id,
    version) index, without reading the signal's rows into a sort."""
    from pathlib import Path

    db, _ = built
    conn = open_db(db)

    def plan(q):
        return " ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + q))

    in_recipes = [(t, q) for f in sorted((Path(recipes.__file__).parent / "builtin").glob("*.sql"))
                  for q, t in re.findall(r"\((SELECT version FROM (\w+_signals) WHERE [^()]*)\)", f.read_text())]
    assert in_recipes
    for table, q in in_recipes + [
            (t, f"SELECT version FROM {t} WHERE signal = 'lang' ORDER BY run_id DESC, version DESC LIMIT 1")
            for t in ("text_signals", "image_signals", "page_signals")]:
        p = plan(q)
        assert f"COVERING INDEX {table}_current" in p and "TEMP B-TREE" not in p, (q, p)
    conn.close()


def test_diff_reason_counts_add_up_and_name_the_rule(built):
    from wdb.recipes.diff import diff

    db, model = built
    conn = open_db(db)
    med = "0.0"
    a, b = recipes.find("datacomp_basic"), recipes.find("laion2b_en")
    d = diff(conn, a, b, {}, {"model": model, "min_score": med}, base_url="http://127.0.0.1:8001", db_name="r")
    ka = keys(pairs(conn, "datacomp_basic"))
    kb = keys(pairs(conn, "laion2b_en", model=model, min_score=med))
    assert (d.a.kept, d.b.kept, d.both) == (len(ka), len(kb), len(ka & kb))
    assert sum(d.a.reasons.values()) == d.a.only == len(ka - kb)
    assert sum(d.b.reasons.values()) == d.b.only == len(kb - ka)
    # independently: laion2b_en drops datacomp pairs only by its CLIP rule (both require English)
    mid = model_id(conn, model)
    low = {m for (m,) in conn.execute("SELECT media_id FROM clip_scores WHERE model_id = ? AND text_source = 'alt' "
                                      "AND score < 0", (mid,))}
    assert d.a.reasons == ({"clip": len({k for k in ka - kb if k[0] in low})} if ka - kb else {})
    lang = sig(conn, "text_signals", "media_id", "lang")
    size = {k: (w, h) for k, w, h in conn.execute("SELECT url_key, width, height FROM images")}
    alts = {m: (alt, key) for m, alt, key, _ in images_with_alt(conn)}
    first = {}
    for m, _ in kb - ka:
        alt, key = alts[m]
        w, h = size.get(key) or (0, 0)
        checks = [("english", lang.get(m, (0, None))[1] == "en"), ("words", len(alt.split()) > 2),
                  ("chars", len(alt) > 5), ("min_side", min(w, h) >= 200),
                  ("aspect", bool(min(w, h)) and max(w, h) / min(w, h) <= 3.0)]
        why = next(n for n, ok in checks if not ok)
        first[why] = first.get(why, 0) + 1
    assert d.b.reasons == first and len(first) >= 2
    assert d.urls["datacomp_basic"].startswith("http://127.0.0.1:8001/r?sql=")
    # the example links run in Datasette and list pairs that one keeps and the other drops
    import asyncio

    from wdb.serve import make_datasette

    ds = make_datasette(db)
    for side, want in ((d.a.name, ka - kb), (d.b.name, kb - ka)):
        path = d.urls[side].removeprefix("http://127.0.0.1:8001")
        page = asyncio.run(ds.client.get(path.replace("/r?", "/r.json?", 1) + "&_shape=array"))
        assert page.status_code == 200, page.text[:300]
        got = {(r["media_id"], r["text_source"]) for r in page.json()}
        assert got and got <= want and len(got) == min(len(want), 50)
    # the same recipe against itself with another parameter: only the parameter's rule differs
    d2 = diff(conn, b, b, {"model": model, "min_score": "-1"}, {"model": model, "min_score": "0.05"})
    assert d2.a.only > 0 and d2.a.reasons == {"clip": d2.a.only} and d2.b.only == 0
    conn.close()


def test_recipe_cli_list_show_count_diff(built):
    db, model = built
    run = CliRunner().invoke
    out = run(cli, ["recipe", "list", "--json"])
    assert out.exit_code == 0 and {r["name"] for r in json.loads(out.output)} == {
        "laion2b_en", "datacomp_basic", "clip_top", "mmc4_dedup", "described"}
    out = run(cli, ["recipe", "show", "laion2b_en"])
    assert out.exit_code == 0 and "gcld3" in out.output and "-- rule: clip" in out.output
    conn = open_db(db)
    n = len(pairs(conn, "clip_top", model=model, percent="50"))
    conn.close()
    out = run(cli, ["recipe", "count", str(db), "clip_top", "-p", f"model={model}", "-p", "percent=50", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["pairs"] == n > 0
    out = run(cli, ["recipe", "count", str(db), "datacomp_basic", "--rules", "--json"])
    assert out.exit_code == 0, out.output
    e = json.loads(out.output)
    assert sum(r["first"] for r in e["rules"]) == e["candidates"] - e["pairs"] > 0
    conn = open_db(db)
    alts = images_with_alt(conn, first_only=False)  # candidates: every rule off, "once" included
    conn.close()
    fails = {r["rule"]: r["fails"] for r in e["rules"]}
    assert e["candidates"] == len(alts) and fails["words"] == sum(len(a.split()) <= 2 for _, a, _, _ in alts) > 0
    assert fails["chars"] == sum(len(a) <= 5 for _, a, _, _ in alts) > 0
    out = run(cli, ["recipe", "count", str(db), "datacomp_basic", "--rules"])
    assert out.exit_code == 0 and "candidates (every rule off)" in out.output and "min_side" in out.output
    out = run(cli, ["recipe", "diff", str(db), "datacomp_basic", "described", "-b", f"model={model}", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert sum(d["a"]["reasons"].values()) == d["a"]["only"] and sum(d["b"]["reasons"].values()) == d["b"]["only"]
    out = run(cli, ["recipe", "diff", str(db), "datacomp_basic", "described", "-b", f"model={model}"])
    assert out.exit_code == 0 and "examples: http://127.0.0.1:8001/r?sql=" in out.output


def test_parameter_options_take_either_spelling(built):
    """`-p NAME=VALUE` and `-p NAME VALUE` give the same answer on every command with parameters
    (recipe, check, export, query, sd; serve's `-p` is its port and stays one)."""
    db, model = built
    run = CliRunner().invoke
    counts = []
    for p in (["-p", f"model={model}", "-p", "percent=50"], ["-p", "model", model, "-p", "percent", "50"],
              ["-p", "model", model, "-p", "percent=50"]):
        out = run(cli, ["recipe", "count", str(db), "clip_top", *p, "--json"])
        assert out.exit_code == 0, out.output
        counts.append(json.loads(out.output)["pairs"])
    assert counts[0] == counts[1] == counts[2] > 0
    diffs = [run(cli, ["recipe", "diff", str(db), "datacomp_basic", "described", *b, "--json"])
             for b in (["-b", f"model={model}"], ["-b", "model", model])]
    assert all(d.exit_code == 0 for d in diffs) and json.loads(diffs[0].output) == json.loads(diffs[1].output)
    rows = [run(cli, ["query", str(db), "alt_pairs", *p]) for p in (["-p", "min_words", "1"], ["-p", "min_words=1"])]
    assert rows[0].exit_code == 0 and rows[0].output == rows[1].output and rows[0].output.count("\n") > 0
    out = run(cli, ["recipe", "count", str(db), "clip_top", "-p", "model", "--json"])
    assert out.exit_code == 2 and "NAME=VALUE" in out.output  # a name without a value stays a usage error


def test_the_parameter_rewrite_itself():
    import click

    from wdb.cli import ParamCommand

    @click.command(cls=ParamCommand)
    @click.option("-p", "pairs", type=(str, str), multiple=True)
    @click.option("-q", "singles", multiple=True, metavar="NAME=VALUE")
    @click.option("--port", "-n", type=int, default=0)
    @click.argument("rest", nargs=-1)
    def show(pairs, singles, port, rest):
        click.echo(json.dumps([pairs, singles, port, rest]))

    def parsed(*args):
        out = CliRunner().invoke(show, list(args))
        assert out.exit_code == 0, out.output
        return json.loads(out.output)

    assert parsed("-p", "a=1", "-p", "b", "2=3", "-q", "c", "-4", "-q", "d=5") == [
        [["a", "1"], ["b", "2=3"]], ["c=-4", "d=5"], 0, []]
    assert parsed("-p", "u=http://x/?k=v", "-n", "7", "x") == [[["u", "http://x/?k=v"]], [], 7, ["x"]]
    # after "--" nothing is rewritten; a value may not look like an option ("--...")
    assert parsed("--", "-p", "a=1") == [[], [], 0, ["-p", "a=1"]]
    out = CliRunner().invoke(show, ["-q", "c", "--port", "3"])
    assert out.exit_code == 0 and json.loads(out.output)[1:3] == [["c"], 3]  # left to the command's own check


@pytest.mark.parametrize("body, message", [
    ("SELECT id AS media_id FROM media", "must select media_id, text, text_source; it lacks text, text_source"),
    ("SELECT id AS media_id, alt AS text, 'alt' AS text_source FROM mediaa", "no such table: mediaa"),
    ("SELECT id AS media_id, alt AS text, 'alt' AS text_source FROM media WHERE 1\n"
     "  OR kind = 'image'  -- rule: kind", "a rule line must begin with AND"),
    ("-- params: n integr\nSELECT id AS media_id, alt AS text, 'alt' AS text_source FROM media LIMIT :n", "bad -- params:"),
    ("SELECT id AS media_id, alt AS text, 'alt' AS text_source FROM media;\n-- end\nSELEC", "syntax error"),
    ("-- defaults: m=1\nSELECT id AS media_id, alt AS text, 'alt' AS text_source FROM media", "which it does not use"),
])
def test_a_bad_recipe_file_is_a_one_line_error(built, tmp_path, body, message):
    db, _ = built
    f = tmp_path / "bad.sql"
    f.write_text(f"-- title: bad\n{body}\n")
    out = CliRunner().invoke(cli, ["recipe", "count", str(db), str(f)])
    assert out.exit_code == 1, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("Error: ")
    (tmp_path / "bin.sql").write_bytes(b"\xff\xfe SELECT")
    out = CliRunner().invoke(cli, ["recipe", "count", str(db), str(tmp_path / "bin.sql")])
    assert out.exit_code == 1 and "not UTF-8" in out.output and len(out.output.strip().splitlines()) == 1


def test_parameters_are_checked(built):
    db, _ = built
    conn = open_db(db)
    with pytest.raises(BadParameter, match="percent must be a number"):
        recipes.select(conn, recipes.find("clip_top"), {"percent": "thirty"})
    with pytest.raises(BadParameter, match="has no parameter min_words"):
        recipes.select(conn, recipes.find("clip_top"), {"min_words": "3"})
    out = CliRunner().invoke(cli, ["recipe", "count", str(db), "clip_top", "-p", "percent"])
    assert out.exit_code == 2 and "NAME=VALUE" in out.output
    with pytest.raises(recipes.UnknownRecipe):
        recipes.find("../etc/passwd")
    conn.close()


def test_a_user_recipe_file_with_rules_runs_and_diffs(built, tmp_path):
    from wdb.recipes.diff import diff

    db, _ = built
    f = tmp_path / "main_alts.sql"
    f.write_text("-- title: main-region alts\n-- description: alts of images in the main region\n"
                 "-- params: min_chars integer\n-- defaults: min_chars=10\n"
                 "SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source FROM media m\n"
                 "WHERE m.kind = 'image' AND m.alt IS NOT NULL\n"
                 "  AND m.region = 'main'                          -- rule: main\n"
                 "  AND length(m.alt) >= CAST(:min_chars AS INTEGER) -- rule: long: at least :min_chars characters\n"
                 "ORDER BY m.id;\n-- the end\n")
    conn = open_db(db)
    want = {(m, "alt") for m, alt, _, region in images_with_alt(conn, first_only=False)
            if region == "main" and len(alt) >= 10}
    assert keys(pairs(conn, str(f))) == want
    assert keys(pairs(conn, str(f), min_chars=100)) < want
    d = diff(conn, recipes.find("mmc4_dedup"), recipes.find(str(f)))
    assert sum(d.a.reasons.values()) == d.a.only and set(d.a.reasons) <= {"main", "long", "not a candidate"}
    region = dict(conn.execute("SELECT id, region FROM media").fetchall())
    kept = keys(pairs(conn, "mmc4_dedup"))
    assert d.a.reasons.get("main", 0) == len({k for k in kept if region[k[0]] != "main"}) > 0
    conn.close()
