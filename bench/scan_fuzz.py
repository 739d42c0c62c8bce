"""Random and spliced markup through the native scanner, for a build with AddressSanitizer/UBSan.

    gcc -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fPIC -shared \\
        $(python3-config --includes) wdb/html/_scan.c -o /tmp/asan/_scan$(python3-config --extension-suffix)
    LD_PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so) \\
        ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 \\
        .venv/bin/python bench/scan_fuzz.py /tmp/asan/_scan*.so 90

Runs scan(), windows() and tokens() on tag soup and on corpus fragments with tags spliced in, for
the given seconds, and prints how many inputs it ran; a sanitizer report stops it.
"""
from __future__ import annotations

import importlib.util
import random
import sys
import time
from html.entities import html5
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT.parent / "shared" / "corpus" / "pages" / "readability" / "test-pages"
sys.path.insert(0, str(ROOT))

FRAGMENTS = ["<", ">", "</", "<!--", "-->", "<!", "<?", "&", "&#", "&#x", ";", '"', "'", "=", "/", "<script>",
             "</script>", "<svg>", "</svg>", "<template>", "</template>", "<noscript>", "<figure>", "<figcaption>",
             "</figure>", "<picture>", "<img src=a.jpg alt=x>", "<a href=x.mp3>", "<title>", "</title>",
             "<textarea>", "<plaintext>", "<![CDATA[", "]]>", "\r", "\n", "\x00", "\ue000", "\U0001F600", "&amp",
             "&notit;", "&#99999999999;", "<video>", "<source src=v.mp4>", "<head>", "<body>", "<iframe>",
             "</iframe>", "x" * 30]


def main() -> None:
    from wdb.html.extract import EXT_KIND

    spec = importlib.util.spec_from_file_location("_scan", sys.argv[1])
    scan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scan)
    scan.setup(dict(html5), dict(EXT_KIND))
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    pages = [p.read_bytes().decode("utf-8", "replace") for p in sorted(PAGES.glob("*/source.html"))[:40]]
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    t, n = time.time(), 0
    while time.time() - t < seconds:
        if rnd.random() < 0.4 or not pages:
            s = "".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randrange(1, 200)))
        else:
            p = rnd.choice(pages)
            i = rnd.randrange(len(p))
            s = p[i:i + rnd.randrange(1, 5000)]
            for _ in range(rnd.randrange(0, 20)):
                k = rnd.randrange(len(s) + 1)
                s = s[:k] + rnd.choice(FRAGMENTS) + s[k + rnd.randrange(0, 5):]
        scan.scan(s, rnd.choice([0, 1, 10, 1000, 2_000_000]))
        text = scan.scan(s, 2_000_000)[0]
        scan.windows(text, [rnd.randrange(len(text) + 1) for _ in range(5)], rnd.choice([1, 3, 256]))
        scan.tokens(text.lower())
        n += 1
    print(f"{n} inputs, no sanitizer report")


if __name__ == "__main__":
    main()
