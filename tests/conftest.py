import json
import sqlite3
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
WARC = CORPUS / "warc"
COCO = CORPUS / "coco-mini"


def coco_photos(n: int) -> list[Path]:
    """The first n real COCO photos (by file name); the test is skipped when the corpus lacks them."""
    files = sorted((COCO / "val2017").glob("*.jpg"))
    if len(files) < n:
        pytest.skip("coco-mini missing")
    return files[:n]


def coco_caption_lists() -> dict[str, list[str]]:
    """{photo file name: its human captions, stripped, in the annotation file's order}."""
    ann = json.loads((COCO / "annotations" / "captions_val2017.json").read_text())
    names = {i["id"]: i["file_name"] for i in ann["images"]}
    caps: dict[str, list[str]] = {}
    for a in ann["annotations"]:
        caps.setdefault(names.get(a["image_id"]), []).append(a["caption"].strip())
    return caps


def corpus(rel: str) -> Path:
    p = WARC / rel
    if not p.exists():
        pytest.skip(f"corpus file missing: {p}")
    return p


@pytest.fixture(scope="session")
def corpus_db(tmp_path_factory):
    """The whole real corpus ingested once with 2 worker processes."""
    from wdb.db import open_db
    from wdb.ingest import ingest

    if not WARC.exists():
        pytest.skip("../shared/corpus/warc not present")
    path = tmp_path_factory.mktemp("corpus") / "corpus.db"
    conn = open_db(path)
    result = ingest(conn, [str(WARC)], workers=2, progress=False, quiet=True, fts=True)
    conn.close()
    return path, result


@pytest.fixture
def db(corpus_db):
    conn = sqlite3.connect(corpus_db[0])
    yield conn
    conn.close()


def table_counts(conn) -> dict:
    tables = ["archives", "archive_chunks", "pages", "media", "media_urls", "archived_media",
              "alt_matches", "problems"]
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def content_rows(conn) -> dict:
    """Everything ingest writes, without ids and run-dependent columns: for exact comparisons."""
    q = {
        "pages": "SELECT a.name, p.url, p.\"offset\", p.inner, p.length, p.title, p.text, p.flags "
                 "FROM pages p JOIN archives a ON a.id = p.archive_id",
        "media": "SELECT p.url, p.\"offset\", m.seq, m.kind, m.url, m.alt, m.pos, m.ctx_start, m.ctx_end "
                 "FROM media m JOIN pages p ON p.id = m.page_id",
        "media_urls": "SELECT p.\"offset\", m.seq, u.attr, u.raw, u.url FROM media_urls u "
                      "JOIN media m ON m.id = u.media_id JOIN pages p ON p.id = m.page_id",
        "alt_matches": "SELECT p.\"offset\", m.seq, x.side, x.start, x.\"end\", x.kind FROM alt_matches x "
                       "JOIN media m ON m.id = x.media_id JOIN pages p ON p.id = m.page_id",
        "archived_media": "SELECT url, \"offset\", sha256, width, height FROM archived_media",
        "problems": "SELECT \"offset\", kind, message FROM problems",
        "fts": "SELECT count(*) FROM pages_fts",
    }
    return {k: sorted(conn.execute(v).fetchall(), key=repr) for k, v in q.items()}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(db, stdout=None, stderr=None, args=(), tries: int = 300):
    """`wdb serve DB` in a subprocess; returns (process, port) once it accepts connections (a
    condition waited on, at most `tries` times 0.1 s)."""
    import socket
    import subprocess
    import sys

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wdb.cli", "serve", str(db), "--port", str(port), *args],
                            stdout=stdout or subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL)
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    return proc, port


def wait_until(condition, timeout: float = 60.0, step: float = 0.05):
    """Poll condition() until it returns something true (and return that) or `timeout` seconds pass
    (return its last value, for the caller's assert): a wait on a condition whose bound is generous
    enough for a loaded machine, never a fixed sleep."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


def archive_htmls():
    """(label, decoded HTML) of every HTML response in the real archives of ../shared/corpus/warc."""
    from wdb.html.charset import decode_html
    from wdb.ingest.extract_record import HTML_TYPES, _mime
    from wdb.warc.http import parse_http_response
    from wdb.warc.reader import ArchiveProblem, ArchiveReader

    files = sorted(p for p in WARC.rglob("*") if p.is_file() and (".warc" in p.name or ".arc" in p.name))
    for f in files:
        with open(f, "rb") as fh:
            for rec in ArchiveReader(fh):
                if isinstance(rec, ArchiveProblem) or rec.rec_type != "response":
                    continue
                pl = parse_http_response(rec.block, 64 << 20)
                if _mime(pl.headers.get("content-type")) in HTML_TYPES:
                    yield f"{f.name}@{rec.offset}", decode_html(pl.body, pl.headers.get("content-type"))[0]


# a tiny random open_clip model (checks plumbing and maths, never quality)
TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def tiny_clip(path: Path, seed: int) -> str:
    """A tiny random open_clip model saved as a folder; its `local-dir:` name."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    path.mkdir(parents=True, exist_ok=True)
    (path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {}}))
    torch.manual_seed(seed)
    torch.save(open_clip.CLIP(**TINY).state_dict(), path / "open_clip_pytorch_model.bin")
    return f"local-dir:{path}"
