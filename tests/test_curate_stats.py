"""Caption statistics (wdb.curate.text) against a plain per-character computation of the same
definitions, on real alt texts and COCO captions (many languages) and edge cases."""
import html
import json
import re
import sys
import unicodedata

from conftest import CORPUS
from wdb.curate import text


def plain(t: str, title):
    words = t.split()
    lower = [w.casefold() for w in re.findall(r"\w+", t)]
    grams = [tuple(lower[i:i + 2]) for i in range(len(lower) - 1)]
    rep = None if len(lower) <= 2 else sum(c for g in set(grams) if (c := grams.count(g)) > 1) / len(grams)

    def norm(x):
        return " ".join(unicodedata.normalize("NFKC", x).casefold().split())

    return [("words", float(len(words)), None), ("chars", float(len(t)), None),
            ("stopword_share", (sum(w in text.STOPWORDS for w in lower) / len(lower)) if lower else 0.0, "en"),
            ("special_share", (sum(not (c.isalnum() or c.isspace()) for c in t) / len(t)) if t else 0.0, None),
            ("rep_ngram_share", rep, None), ("filename_like", 1.0 if text.is_filename_like(t) else 0.0, None),
            ("title_equal", None if title is None else (1.0 if title and norm(title) == norm(t) else 0.0), None)]


def test_stats_equal_a_plain_computation():
    texts = []
    for f in sorted((CORPUS / "pages" / "readability" / "test-pages").glob("*/source.html")):
        src = f.read_text(errors="replace")
        title = re.search(r"<title[^>]*>([^<]*)", src, re.I)
        for m in re.finditer(r'<img[^>]*\balt="([^"]*)"', src, re.I):
            texts.append((html.unescape(m.group(1)), html.unescape(title.group(1)) if title else None))
    caps = CORPUS / "coco-mini" / "annotations" / "captions_val2017.json"
    if caps.is_file():
        texts += [(a["caption"], None) for a in json.loads(caps.read_text())["annotations"][:300]]
    edge = ["", " ", "_", "a_b c", "x y x y x y", "IMG_1234.jpg", "ÉTÉ été", "\u00a0\u2003\u3000", "٣٤٥ ٣٤٥ ٣٤٥",
            "the the the the", "™©®…—", "Ⅻ ½ ²"]
    texts += [(t, None) for t in edge] + [(t, t.upper()) for t in edge] + [("Street photos", "street  PHOTOS")]
    assert len(texts) > 300
    for t, title in texts * 2:  # twice: the second pass is served by the caches
        assert text.stats(t, title) == plain(t, title), (t, title)


def test_special_characters_regex_matches_str_methods_everywhere():
    step = 7 if sys.maxunicode > 0xFFFF else 1  # a sample of every plane (all of them: ~6 s)
    for cp in range(0, sys.maxunicode + 1, step):
        c = chr(cp)
        assert bool(text._SPECIAL.fullmatch(c)) == (not (c.isalnum() or c.isspace())), hex(cp)
