"""The input side of wdb score (wdb/score/inputs.py) and its loop: open_clip's own geometry split
off its preprocess, full-size decoding equal to open_clip to 1e-5, reduced-size (draft) and tensor
(decode_jpeg) decoding within a stated tolerance, several models in one pass, texts encoded once,
commits every N batches (a SIGKILL loses only uncommitted batches, re-scored next run). Real COCO
photos; tiny random open_clip models (numerical agreement, not quality)."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, tiny_clip
from test_fetch_score import coco_captions
from warcs import gz_members, http, record
from wdb.db import open_db
from wdb.ingest import ingest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
COCO = CORPUS / "coco-mini"
ROOT = Path(__file__).resolve().parent.parent


def coco_files(n: int) -> list[Path]:
    files = sorted((COCO / "val2017").glob("*.jpg"))
    if not files:
        pytest.skip("coco-mini missing")
    return files[:n]


def build_db(d: Path, n_images: int, n_files: int = 12, png: bool = True) -> tuple[Path, dict]:
    """A WARC with n_images COCO photos (n_files distinct ones, so alts repeat) plus a PNG, a page
    showing them with their captions as alts; ingested and fetched from the archive."""
    from PIL import Image

    from wdb.fetch import FetchSettings, fetch

    files, caps = coco_files(n_files), coco_captions()
    recs, imgs, bodies = [], [], {}
    for i in range(n_images):
        f = files[i % len(files)]
        url = f"http://img.example.org/{i}/{f.name}"
        bodies[url] = f.read_bytes()
        recs.append(record(url, http(bodies[url], "image/jpeg")))
        imgs.append(f'<img src="{url}" alt="{caps.get(f.name, f.name)}">')
    if png:  # a non-JPEG: decoded in full by PIL in every mode
        buf = io.BytesIO()
        Image.open(files[0]).convert("RGB").resize((300, 200)).save(buf, "PNG")
        url = "http://img.example.org/p.png"
        bodies[url] = buf.getvalue()
        recs.append(record(url, http(bodies[url], "image/png")))
        imgs.append(f'<img src="{url}" alt="a png photo">')
    html = ("<html><body>" + "".join(f"<p>Photo {i}.</p>{t}" for i, t in enumerate(imgs)) + "</body></html>").encode()
    recs.append(record("http://img.example.org/", http(html)))
    warc = d / "imgs.warc.gz"
    warc.write_bytes(gz_members(recs))
    db = d / "s.db"
    conn = open_db(db)
    ingest(conn, [str(warc)], workers=0, progress=False, quiet=True)
    fetch(conn, FetchSettings(), progress=False)
    assert conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone()[0] == len(bodies)
    conn.close()
    return db, bodies


def independent(model_dir: str, pairs: list[tuple[bytes, str]]) -> list[float]:
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(model_dir)
    tok = open_clip.get_tokenizer(model_dir)
    model.eval()
    out = []
    with torch.no_grad():
        for body, text in pairs:
            ie = torch.nn.functional.normalize(model.encode_image(preprocess(Image.open(io.BytesIO(body)).convert("RGB"))[None]), dim=-1)
            te = torch.nn.functional.normalize(model.encode_text(tok([text])), dim=-1)
            out.append((ie * te).sum().item())
    return out


def stored_scores(db: Path, mid: int) -> dict[str, tuple[str, float]]:
    conn = open_db(db)
    return {u: (a, s) for u, a, s in conn.execute(
        "SELECT m.url, m.alt, c.score FROM clip_scores c JOIN media m ON m.id = c.media_id WHERE c.model_id = ?",
        (mid,))}


def run_score(db: Path, **kw):
    from wdb.score import ScoreSettings, score

    kw.setdefault("sources", ("alt",))
    kw.setdefault("pretrained", "")
    return score(open_db(db), ScoreSettings(**kw), log=open(os.devnull, "w"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return tiny_clip(d / "a", 0), tiny_clip(d / "b", 1)


def test_geometry_is_open_clips_own_preprocess_split():
    """split_preprocess keeps open_clip's PIL steps and mean/std; uint8 + normalize == preprocess exactly."""
    from PIL import Image

    from wdb.score.inputs import normalize, pil_pixels, split_preprocess

    from open_clip.transform import PreprocessCfg, image_transform_v2

    drafted = 0
    for name in ("ViT-B-32", "ViT-L-14", "ViT-L-14-336"):
        cfg = open_clip.get_model_config(name)
        size = cfg["vision_cfg"]["image_size"]
        pre = image_transform_v2(PreprocessCfg(**{**cfg.get("preprocess_cfg", {}), "size": size}), is_train=False)
        g = split_preprocess(pre)
        assert g.crop == (size, size) and g.shortest == size and g.simple and g.mean == open_clip.OPENAI_DATASET_MEAN
        for f in coco_files(4):
            body = f.read_bytes()
            want = pre(Image.open(io.BytesIO(body)).convert("RGB"))
            (full,) = pil_pixels(body, [g], 1 << 30, reduced=False)
            assert full.dtype == torch.uint8 and torch.equal(normalize(full[None], g, torch.device("cpu"))[0], want)
            (small,) = pil_pixels(body, [g], 1 << 30, reduced=True)  # 640x480 -> drafted to 1/2 (320x240) at 224
            assert small.shape == full.shape
            w, h = Image.open(io.BytesIO(body)).size
            diff = (small.int() - full.int()).abs().float().mean().item()  # mean absolute, of 255
            if min(w, h) < 2 * size:  # no DCT scale keeps both sides >= size: full decode, tensor resize
                assert diff < 0.05
                continue
            drafted += 1
            assert 0.05 < diff < 6  # what decoding at 1/2 scale costs
    assert drafted > 0


def test_full_decode_equals_open_clip_and_draft_stays_close(tmp_path, models):
    db, bodies = build_db(tmp_path, 14)
    a = models[0]
    res = run_score(db, model=a, decode="full", batch_size=4, workers=2)
    assert res.counts["images"] == len(bodies) and res.counts["decode"] == "full"
    got = stored_scores(db, res.counts["model_id"])
    assert len(got) == len(bodies)
    urls = sorted(got)
    want = independent(a, [(bodies[u], got[u][0]) for u in urls])
    assert max(abs(got[u][1] - w) for u, w in zip(urls, want)) < 1e-5
    # the same images with reduced-size decoding, as a new model (same weights, other folder)
    b_dir = tmp_path / "a2"
    b_dir.mkdir()
    for f in Path(a[len("local-dir:"):]).iterdir():
        (b_dir / f.name).write_bytes(f.read_bytes())
    (b_dir / "marker").write_text("draft")  # another weights identity: its own model row
    res = run_score(db, model=f"local-dir:{b_dir}", decode="draft", batch_size=5, workers=0)
    draft = stored_scores(db, res.counts["model_id"])
    diffs = [abs(draft[u][1] - w) for u, w in zip(urls, want)]
    # the tiny model's 32 px input lets libjpeg decode COCO at 1/8: a few 1e-3 on these random weights
    assert max(diffs) < 2e-2 and max(diffs) > 0
    # a PNG has no DCT scales: full decode, only the resize runs on the tensor instead of in PIL
    png = abs(draft["http://img.example.org/p.png"][1] - want[urls.index("http://img.example.org/p.png")])
    assert png < 1e-3 and png < max(diffs)


def test_device_decode_on_cpu_is_close_to_full(tmp_path, models):
    """decode='device' (torchvision batched decode_jpeg, tensor resize) runs on the CPU too."""
    db, bodies = build_db(tmp_path, 9)
    res = run_score(db, model=models[0], decode="device", batch_size=4, workers=1)
    assert res.counts["images"] == len(bodies) and res.counts["decode"] == "device"
    got = stored_scores(db, res.counts["model_id"])
    urls = sorted(got)
    want = independent(models[0], [(bodies[u], got[u][0]) for u in urls])
    diffs = [abs(got[u][1] - w) for u, w in zip(urls, want)]
    assert max(diffs) < 2e-2
    assert diffs[urls.index("http://img.example.org/p.png")] < 2e-2  # PNG: decoded by PIL in the worker


def test_two_models_in_one_pass_equal_separate_runs(tmp_path, models):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    db1, _ = build_db(tmp_path / "one", 10)
    db2, _ = build_db(tmp_path / "two", 10)
    a, b = models
    res = run_score(db1, model=a, more_models=((b, ""),), decode="full", batch_size=3, workers=2)
    assert res.counts["images"] == 11 and len(res.counts["model_ids"]) == 2
    sep_a = run_score(db2, model=a, decode="full", batch_size=4)
    sep_b = run_score(db2, model=b, decode="full", batch_size=4)
    for mid, sep in zip(res.counts["model_ids"], (sep_a, sep_b)):
        one, two = stored_scores(db1, mid), stored_scores(db2, sep.counts["model_id"])
        assert one.keys() == two.keys() and len(one) == 11
        assert max(abs(one[u][1] - two[u][1]) for u in one) < 1e-6
    conn = open_db(db1)
    assert conn.execute("SELECT count(*), count(DISTINCT model_id) FROM clip_image_status WHERE status = 'ok'"
                        ).fetchone() == (22, 2)
    assert all(d == 16 for (d,) in conn.execute("SELECT embed_dim FROM clip_models"))
    # nothing pending: a second pass decodes nothing
    assert run_score(db1, model=a, more_models=((b, ""),)).counts["images"] == 0


def test_each_distinct_text_is_encoded_once(tmp_path, models, monkeypatch):
    import wdb.score as score_mod

    db, bodies = build_db(tmp_path, 24, n_files=6, png=False)  # each alt on 4 images
    encoded = []
    real = score_mod.load_clip

    def counting(name, pretrained, device):
        model, pre, tok = real(name, pretrained, device)
        enc = model.encode_text

        def encode_text(tokens, *a, **k):
            encoded.append(len(tokens))
            return enc(tokens, *a, **k)

        model.encode_text = encode_text
        return model, pre, tok

    monkeypatch.setattr(score_mod, "load_clip", counting)
    res = run_score(db, model=models[0], batch_size=4, workers=0)
    assert res.counts["scores"] == 24
    n_alts = len({a for a, _ in stored_scores(db, res.counts["model_id"]).values()})
    assert sum(encoded) == n_alts <= 6


KILLER = """
import os, signal, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import wdb.score as s
from wdb.db import open_db
real, calls = s._batch, [0]
def batch(*a, **k):
    calls[0] += 1
    if calls[0] == 6:
        os.kill(os.getpid(), signal.SIGKILL)  # a hard kill at a fixed batch: no cleanup at all
    return real(*a, **k)
s._batch = batch
s.score(open_db({db!r}), s.ScoreSettings(model={model!r}, pretrained="", batch_size=2, commit_every=2,
        decode="full"), log=open(os.devnull, "w"))
"""


def test_sigkill_loses_only_uncommitted_batches_and_they_are_rescored(tmp_path, models):
    db, bodies = build_db(tmp_path, 15)  # 16 images: 8 batches of 2
    code = KILLER.format(root=str(ROOT), tests=str(ROOT / "tests"), db=str(db), model=models[0])
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert p.returncode == -9, p.stderr.decode()[-2000:]
    conn = open_db(db)
    done = conn.execute("SELECT count(*) FROM clip_image_status").fetchone()[0]
    scores = conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0]
    # whole commits only (2 batches of 2 images each), and at most the 5 batches before the kill
    assert done % 4 == 0 and done <= 10 and scores == done
    conn.execute("UPDATE runs SET status = 'failed' WHERE status = 'running'")  # the killed run's row
    res = run_score(db, model=models[0], batch_size=2, commit_every=2, decode="full")
    assert res.counts["images"] == len(bodies) - done
    got = stored_scores(db, res.counts["model_id"])
    assert len(got) == len(bodies)
    urls = sorted(got)
    want = independent(models[0], [(bodies[u], got[u][0]) for u in urls])
    assert max(abs(got[u][1] - w) for u, w in zip(urls, want)) < 1e-5


def test_bad_decode_setting_is_a_clear_error(tmp_path, models):
    from wdb.score import resolve_decode

    with pytest.raises(ValueError, match="decode must be one of"):
        resolve_decode("fast", torch.device("cpu"))
    assert resolve_decode("auto", torch.device("cpu")) == "draft"
    assert resolve_decode("full", torch.device("cuda")) == "full"


def test_batched_jpeg_decode_isolates_a_bad_jpeg():
    """One truncated JPEG fails torchvision's batch: the others still decode, it comes back None
    (wdb score then tries PIL, which records it as undecodable)."""
    from wdb.score.inputs import Geometry, decode_jpegs_on, split_preprocess

    _, _, pre = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    g: Geometry = split_preprocess(pre)
    good = [f.read_bytes() for f in coco_files(2)]
    bad = good[0][: len(good[0]) * 6 // 10]
    raw = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in (good[0], bad, good[1])]
    out = decode_jpegs_on(torch.device("cpu"), raw, [g])
    assert out[1] is None and [o[0].shape for o in (out[0], out[2])] == [(3, 224, 224)] * 2
    assert out[0][0].dtype == torch.uint8


def _jpeg(im, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_libjpeg_turbo_decode_equals_pils_draft_at_every_scale():
    """decode='draft' decodes JPEGs with simplejpeg straight into an array: the same pixels as
    PIL's draft decode at the same DCT scale (1/1, 1/2, 1/4, 1/8: a wrong scale fails the shape),
    on real COCO photos and a greyscale one; CMYK is left to PIL; the pixel cap is read from the
    header; a truncated JPEG is left to PIL, which raises."""
    pytest.importorskip("simplejpeg")
    from PIL import Image

    from wdb.fetch.probe import ImageProblem
    from wdb.score.inputs import decode_rgb_reduced, jpeg_chw_reduced, pil_pixels, split_preprocess, to_uint8_chw

    bodies = [f.read_bytes() for f in coco_files(10)]
    grey = Image.open(io.BytesIO(bodies[0])).convert("L")
    bodies.append(_jpeg(grey, quality=90))
    scales = set()
    for body in bodies:
        w, h = Image.open(io.BytesIO(body)).size
        for shortest in (32, 100, 224, 336, 10 ** 6):
            got = jpeg_chw_reduced(body, shortest, 1 << 30)
            want = to_uint8_chw(decode_rgb_reduced(body, shortest, 1 << 30, True))
            assert got.dtype == torch.uint8 and got.shape == want.shape and torch.equal(got, want)
            assert min(got.shape[1:]) >= min(shortest, w, h)  # the resize only shrinks
            scales.add(round(w / got.shape[2]))
    assert scales == {1, 2, 4, 8}
    with pytest.raises(ImageProblem, match="pixel cap"):
        jpeg_chw_reduced(bodies[0], 224, 1000)
    cmyk = _jpeg(Image.open(io.BytesIO(bodies[1])).convert("CMYK"))
    assert jpeg_chw_reduced(cmyk, 224, 1 << 30) is None
    _, _, pre = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    g = split_preprocess(pre)
    (px,) = pil_pixels(cmyk, [g], 1 << 30, True)  # PIL's CMYK -> RGB, then the tensor geometry
    assert px.shape == (3, 224, 224)
    cut = bodies[2][: len(bodies[2]) // 2]
    assert jpeg_chw_reduced(cut, 224, 1 << 30) is None
    with pytest.raises(OSError):
        pil_pixels(cut, [g], 1 << 30, True)


class _Views(torch.utils.data.Dataset):
    """Items as Images gives them: resized + cropped views of HWC memory."""

    def __init__(self, arrays, g):
        self.arrays, self.g = arrays, g

    def __len__(self):
        return len(self.arrays)

    def __getitem__(self, i):
        from wdb.score.inputs import device_geometry

        return i, ("pixels", [device_geometry(torch.from_numpy(self.arrays[i]).permute(2, 0, 1), self.g)]), "ok", None


class _SharedCheck:
    def __init__(self, collate):
        self.collate = collate

    def __call__(self, batch):
        out = self.collate(batch)
        assert out["stacks"][0].is_shared()  # allocated in shared memory in the worker: no copy on send
        return out


def test_batches_are_nhwc_in_shared_memory_and_normalise_as_a_plain_stack():
    """The worker's batch is built in shared memory with each image's rows copied as they lie
    (NHWC memory, an NCHW view); normalize makes it contiguous: the same floats as a plain stack."""
    from PIL import Image

    from wdb.score.inputs import Collate, device_geometry, normalize, split_preprocess

    _, _, pre = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    g = split_preprocess(pre)
    arrays = [__import__("numpy").array(Image.open(f).convert("RGB")) for f in coco_files(5)]
    loader = torch.utils.data.DataLoader(_Views(arrays, g), batch_size=3, num_workers=1,
                                         collate_fn=_SharedCheck(Collate([[] for _ in arrays], [])))
    got = [b["stacks"][0] for b in loader]
    assert [tuple(b.shape) for b in got] == [(3, 3, 224, 224), (2, 3, 224, 224)]
    plain = torch.stack([device_geometry(torch.from_numpy(a).permute(2, 0, 1), g) for a in arrays])
    allb = torch.cat(got)
    assert got[0].stride()[1] == 1 and torch.equal(allb, plain)
    cpu = torch.device("cpu")
    x = normalize(got[0], g, cpu)
    assert x.is_contiguous() and torch.equal(x, normalize(plain[:3].contiguous(), g, cpu))
