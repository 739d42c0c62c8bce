"""Caption statistics that DataComp and OBELICS filter on, computed from the text alone.

DataComp `basic`: `len(text.split()) > 2`, `len(text) > 5`. OBELICS: share of stopwords, of special
characters and of repeated n-grams; alts that are file names or camera names; alt equal to the title.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

VERSION = "stats.1"

# English stopwords (OBELICS' English list is a superset of these common function words)
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves
""".split())

# names a camera, phone or CMS gives a file, and file names with an image extension
_FILENAME = re.compile(
    r"""^\s*(?:
        (?:img|dsc|dscn|dscf|dcim|pict|pxl|mvimg|gopr|sam|wp|p|photo|image|picture|pic|screenshot|
           screen\s?shot|untitled|scan|userimage|user\s?image|dji|cimg|imag|snapshot|capture)
           [\s_\-.]*\d[\w\-. ]*                               # IMG_1234, DSC0001, Screenshot 2021-01-01
      | userimage | placeholder | spacer | blank | no[\s_-]?image | image | photo | picture | thumbnail
      | [\w\-. ]*\.(?:jpe?g|png|gif|webp|bmp|tiff?|svg|heic|avif)   # anything.jpg
      | [0-9a-f]{16,} | \d{4,}(?:[_\-]\d+)*                     # hashes and bare numbers
    )\s*$""", re.I | re.X)

_WORD = re.compile(r"\w+", re.U)
# neither alphanumeric (str.isalnum) nor whitespace (str.isspace): \w is isalnum plus "_", and \s is
# isspace, for every code point (checked over all of Unicode)
_SPECIAL = re.compile(r"[^\w\s]|_")


def is_filename_like(text: str) -> bool:
    return bool(_FILENAME.match(text))


@lru_cache(maxsize=16384)
def norm(text: str) -> str:
    """Case-folded, NFKC, whitespace collapsed: for "alt equals title" and repeat counts."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def special_share(text: str) -> float:
    """Share of characters that are neither letters/digits nor whitespace (OBELICS' special characters)."""
    if not text:
        return 0.0
    return len(_SPECIAL.findall(text)) / len(text)


def repeated_ngram_share(words: list[str], n: int = 2) -> float | None:
    """Share of word n-grams that occur more than once (OBELICS' repetition ratio); None when fewer
    than n + 1 words."""
    if len(words) <= n:
        return None
    seen = Counter(zip(*(words[i:] for i in range(n))))
    return sum(c for c in seen.values() if c > 1) / (len(words) - n + 1)


@lru_cache(maxsize=16384)
def _text_stats(text: str) -> tuple:
    """The statistics of a text that do not depend on its page (cached: the same alt recurs)."""
    lower = [w.casefold() for w in _WORD.findall(text)]
    stop = (sum(map(STOPWORDS.__contains__, lower)) / len(lower)) if lower else 0.0
    return (float(len(text.split())), float(len(text)), stop, special_share(text), repeated_ngram_share(lower),
            1.0 if is_filename_like(text) else 0.0)


SIGNALS = ("words", "chars", "stopword_share", "special_share", "rep_ngram_share", "filename_like", "title_equal")
LABELS = (None, None, "en", None, None, None, None)


def values(text: str, title: str | None = None) -> tuple:
    """The values of SIGNALS for one caption, in that order (labels: LABELS)."""
    eq = (1.0 if title and norm(title) == norm(text) else 0.0) if title is not None else None
    return (*_text_stats(text), eq)


def stats(text: str, title: str | None = None) -> list[tuple[str, float | None, str | None]]:
    """[(signal, value, label)] for one caption."""
    return list(zip(SIGNALS, values(text, title), LABELS, strict=True))
