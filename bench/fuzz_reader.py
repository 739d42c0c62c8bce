"""Fuzz wdb's archive reader and extractor: damaged archives in, no exception out.

    pip install atheris                                  # coverage-guided (libFuzzer) where it installs
    python bench/fuzz_reader.py --seconds 120            # reader + record checks + extraction
    python bench/fuzz_reader.py --target extract --seconds 120   # bytes as an HTML payload (real pages as seeds)
    python bench/fuzz_reader.py --plain --seconds 120    # no atheris: seeded random mutations

Seeds are the small real archives of ../shared/corpus/warc (and their records uncompressed). For
each input the `reader` target iterates `ArchiveReader` over it, checks each record the way ingest
does (`check_record`) and extracts it (`process_record`: HTTP parsing, content decoding, charset,
the HTML scanner, context windows, alt matching), and asserts that every record lies inside the
input, after the one before it.  Any exception is a crash: its input is saved under --crashes
(default /tmp/wdb-fuzz-crashes) and counted, and fuzzing goes on.  The last line gives inputs tried
and crashes found.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import random
import sys
import time
import traceback
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WARC = ROOT.parent / "shared" / "corpus" / "warc"
SEEDS = ["cc-whirlwind/whirlwind.warc.gz", "jwarc-tests/cc.warc.gz", "pywb-sample-archive/example.arc.gz",
         "pywb-sample-archive/example.warc.gz", "pywb-sample-archive/example-wget-1-14.warc.gz",
         "pywb-sample-archive/dupes.warc.gz", "aut-tests/issue-514.warc", "resiliparse-tests/clipped.warc.gz",
         "ukwa-webarchive-discovery/transfer_compression_brotli.warc.gz"]
MAX_LEN = 1 << 17

state = {"inputs": 0, "crashes": 0, "seen": set(), "dir": Path("/tmp/wdb-fuzz-crashes"), "t0": time.monotonic()}


def html_seeds() -> list[bytes]:
    """Real pages for the extract target (the readability test pages)."""
    pages = sorted((ROOT.parent / "shared" / "corpus" / "pages").rglob("*.html"))
    return [p.read_bytes()[:MAX_LEN] for p in pages[:60]] or seeds()


def seeds() -> list[bytes]:
    out = []
    for rel in SEEDS:
        p = WARC / rel
        if not p.exists():
            continue
        data = p.read_bytes()
        out.append(data[:MAX_LEN])
        if data[:2] == b"\x1f\x8b":  # the same records uncompressed, and as one gzip stream
            plain, i = [], 0
            while i < len(data):
                d = zlib.decompressobj(31)
                plain.append(d.decompress(data[i:]))
                i = len(data) - len(d.unused_data) if d.eof else len(data)
            out.append(b"".join(plain)[:MAX_LEN])
            out.append(gzip.compress(out[-1]))
    if not out:
        sys.exit(f"no seeds under {WARC}")
    return out


def _imports():
    from wdb.html.charset import decode_html
    from wdb.html.extract import extract
    from wdb.ingest.chunk import check_record
    from wdb.ingest.extract_record import Batch, Settings, process_record
    from wdb.warc.reader import ArchiveProblem, ArchiveReader

    return dict(decode_html=decode_html, extract=extract, check_record=check_record, Batch=Batch,
                Settings=Settings, process_record=process_record, ArchiveProblem=ArchiveProblem,
                ArchiveReader=ArchiveReader)


W: dict = {}


def reader_target(data: bytes) -> None:
    settings = W["settings"]
    batch = W["Batch"]()
    last = (-1, -1)
    for item in W["ArchiveReader"](io.BytesIO(data), max_block=1 << 20):
        if isinstance(item, W["ArchiveProblem"]):
            assert item.offset is None or 0 <= item.offset <= len(data), item.offset
            continue
        key = (item.offset, item.inner)
        assert key > last and 0 <= item.offset < len(data), (key, last, len(data))
        assert item.offset + item.length <= len(data), (item.offset, item.length, len(data))
        last = key
        if W["check_record"](item, batch.problems):
            W["process_record"](item, batch, settings)


def extract_target(data: bytes) -> None:
    html, _, _ = W["decode_html"](data, "text/html")
    page = W["extract"](html, "http://example.com/a/b.html", 200_000)
    for it in page.items:
        assert it.pos is None or 0 <= it.pos <= len(page.text)


def one(target, data: bytes) -> None:
    state["inputs"] += 1
    if state.get("deadline") and time.monotonic() > state["deadline"]:
        report("atheris", state["target"])  # libFuzzer exits without running atexit handlers
        os._exit(0)
    try:
        target(data)
    except Exception as e:  # noqa: BLE001 -- every exception is a finding: saved, counted, and on
        frame = traceback.extract_tb(e.__traceback__)[-1]
        sig = (type(e).__name__, f"{frame.filename}:{frame.lineno}")
        state["crashes"] += 1
        state["dir"].mkdir(parents=True, exist_ok=True)
        name = f"crash-{hashlib.sha1(data).hexdigest()[:16]}"
        (state["dir"] / name).write_bytes(data)
        if sig not in state["seen"]:
            state["seen"].add(sig)
            print(f"CRASH {type(e).__name__}: {str(e)[:200]} at {sig[1]} -> {state['dir'] / name}",
                  flush=True)


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """The random damage of tests/test_reader_property.py, over a wider mix."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(9)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            for _ in range(rng.randint(1, 16)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = rng.choice([b"\n", b"\r\n", b"\x00" * rng.randint(1, 2000), rng.randbytes(rng.randint(1, 600)),
                                 b"WARC/1.0\r\n", b"\r\n\r\n", b"\x1f\x8b\x08"])
        elif op == 2:
            del b[i:i + rng.randint(1, 4000)]
        elif op == 3:
            del b[i:]
        elif op == 4:
            j = rng.randrange(len(b) + 1)
            b[j:j] = b[i:i + rng.randint(1, 5000)]
        elif op == 5:
            k = bytes(b).find(rng.choice([b"Content-Length:", b"\n"]), i)
            if k >= 0:
                b[k:k + 24] = bytes(b[k:k + 16]) + str(rng.choice([0, 1, 10 ** rng.randint(1, 12), -5, "x"])).encode()
        elif op == 6:
            other = rng.choice(pool)
            j = rng.randrange(len(other) + 1)
            b[i:i] = other[j:j + rng.randint(1, 8000)]
        elif op == 7:
            k = bytes(b).find(rng.choice([b"\nhttp", b"\n", b": "]), i)
            k = bytes(b).find(b" ", k, k + 300) if k >= 0 else -1
            if k >= 0:
                b[k + 1:k + 1] = rng.choice([b"\xbf", b"\xb3", b"\xff\xfe", b"\xc3", b"\x00", b" "])
        elif b:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.choice(b" :<>\r\n\x00\xbf\xff0123456789-")
    if rng.random() < 0.1 and b[:2] != b"\x1f\x8b":
        b = bytearray(gzip.compress(bytes(b), 1))  # damaged content inside a valid gzip stream
    return bytes(b[:MAX_LEN * 2])


def plain(target, seconds: float, seed: int, pool: list[bytes]) -> None:
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(50):
            one(target, mutate(rng, rng.choice(pool), pool))


def report(mode: str, target: str) -> None:
    secs = time.monotonic() - state["t0"]
    print(f"fuzz_reader {mode} target={target}: {state['inputs']} inputs in {secs:.0f} s, "
          f"{state['crashes']} crashes ({len(state['seen'])} distinct)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=["reader", "extract"], default="reader")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--plain", action="store_true", help="seeded random mutations, no atheris")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--crashes", default="/tmp/wdb-fuzz-crashes")
    args, rest = ap.parse_known_args()
    state["dir"] = Path(args.crashes)
    try:
        import atheris
    except ImportError:
        atheris = None
        if not args.plain:
            print("atheris is not installed: running --plain", file=sys.stderr)
            args.plain = True
    if args.plain:
        W.update(_imports())
        W["settings"] = W["Settings"](max_page_bytes=1 << 20, max_record_bytes=1 << 20)
        target = reader_target if args.target == "reader" else extract_target
        state["t0"] = time.monotonic()
        plain(target, args.seconds, args.seed, seeds() if args.target == "reader" else html_seeds())
        report("plain", args.target)
        return
    with atheris.instrument_imports(include=["wdb"]):
        W.update(_imports())
    W["settings"] = W["Settings"](max_page_bytes=1 << 20, max_record_bytes=1 << 20)
    target = reader_target if args.target == "reader" else extract_target
    corpus_dir = Path(os.environ.get("WDB_FUZZ_CORPUS", f"/tmp/wdb-fuzz-corpus-{args.target}"))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(seeds() if args.target == "reader" else html_seeds()):
        (corpus_dir / f"seed-{k}").write_bytes(s)
    state["t0"] = time.monotonic()
    state["deadline"], state["target"] = state["t0"] + args.seconds, args.target
    atheris.Setup([sys.argv[0], *rest, f"-max_len={MAX_LEN}", str(corpus_dir)], lambda data: one(target, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
