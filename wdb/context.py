"""Word windows around media items, and where an alt text reappears in them (weak labels)."""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"\w+")
PARTIAL_MIN = 0.6  # share of the alt's tokens a partial match must contain


@dataclass
class Match:
    side: str  # before | after
    start: int  # character offsets in the page text
    end: int
    kind: str  # exact | normalised | partial
    score: float


class WordIndex:
    """Start/end offsets of the white-space separated words of a text, built once per page."""

    def __init__(self, text: str):
        self.starts: list[int] = []
        self.ends: list[int] = []
        for m in _WORD.finditer(text):
            self.starts.append(m.start())
            self.ends.append(m.end())

    def window(self, pos: int, words: int) -> tuple[int, int]:
        """(start of the `words`-th word before pos, end of the `words`-th word after pos)."""
        i = bisect_right(self.ends, pos)  # words wholly before pos: [0, i)
        lo = self.starts[i - words] if i >= words else 0
        j = bisect_left(self.starts, pos)  # words from pos on: [j, ...)
        k = j + words - 1
        hi = self.ends[k] if k < len(self.ends) else (self.ends[-1] if self.ends else pos)
        return min(lo, pos), max(hi, pos)


def normalise(s: str) -> str:
    return " ".join(t.lower() for t in _TOKEN.findall(s))


def find_alt(text: str, alt: str, lo: int, pos: int, hi: int) -> Match | None:
    """Where alt reappears in text[lo:pos] (before) or text[pos:hi] (after), nearest first.

    exact: the alt verbatim; normalised: equal after lower-casing and dropping punctuation and
    extra white space; partial: the best run of len(alt) words holding >= 60 % of the alt's words
    (score = that share).
    """
    alt = alt.strip()
    if not alt:
        return None
    j = _bounded(text, alt, lo, pos, reverse=True)
    k = _bounded(text, alt, pos, hi)
    best = _nearest(j, k, len(alt), pos)
    if best:
        return Match(best[0], best[1], best[2], "exact", 1.0)
    want = [t.lower() for t in _TOKEN.findall(alt)]
    if not want:
        return None
    sides = []
    for side, a, b in (("before", lo, pos), ("after", pos, hi)):
        toks = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text, a, b)]
        sides.append((side, toks))
    n = len(want)
    joined_want = " ".join(want)
    found = []
    for side, toks in sides:
        words = [t[2] for t in toks]
        joined = " ".join(words)
        idx = joined.rfind(joined_want) if side == "before" else joined.find(joined_want)
        while idx >= 0:
            # only whole-token matches count
            ok_l = idx == 0 or joined[idx - 1] == " "
            e = idx + len(joined_want)
            ok_r = e == len(joined) or joined[e] == " "
            if ok_l and ok_r:
                first = joined.count(" ", 0, idx)
                found.append((side, toks[first][0], toks[first + n - 1][1]))
                break
            idx = joined.rfind(joined_want, 0, idx) if side == "before" else joined.find(joined_want, idx + 1)
    if found:
        found.sort(key=lambda m: abs((m[2] if m[0] == "before" else m[1]) - pos))
        side, s, e = found[0]
        return Match(side, s, e, "normalised", 1.0)
    if n < 2:
        return None
    need = Counter(want)
    best_m = None
    for side, toks in sides:
        words = [t[2] for t in toks]
        if sum(min(c, words.count(w)) for w, c in need.items()) < PARTIAL_MIN * n:
            continue
        have: Counter = Counter()
        for i, w in enumerate(words):
            have[w] += 1
            if i >= n:
                have[words[i - n]] -= 1
            if i >= n - 1:
                start = i - n + 1
                score = sum(min(c, have[w2]) for w2, c in need.items()) / n
                if score >= PARTIAL_MIN:
                    # tighten to the first and last matching tokens of the run
                    run = range(start, i + 1)
                    hits = [r for r in run if words[r] in need]
                    s, e = toks[hits[0]][0], toks[hits[-1]][1]
                    dist = abs((e if side == "before" else s) - pos)
                    cand = (-score, dist, side, s, e)
                    if best_m is None or cand < best_m:
                        best_m = cand
    if best_m:
        return Match(best_m[2], best_m[3], best_m[4], "partial", round(-best_m[0], 4))
    return None


def _bounded(text: str, alt: str, lo: int, hi: int, reverse: bool = False) -> int:
    """Nearest occurrence of alt in text[lo:hi] that does not cut a word at either end."""
    n = len(alt)
    i = text.rfind(alt, lo, hi) if reverse else text.find(alt, lo, hi)
    while i >= 0:
        left_ok = i == 0 or not (text[i - 1].isalnum() and alt[0].isalnum())
        right_ok = i + n >= len(text) or not (text[i + n].isalnum() and alt[-1].isalnum())
        if left_ok and right_ok:
            return i
        i = text.rfind(alt, lo, i + n - 1) if reverse else text.find(alt, i + 1, hi)
    return -1


def _nearest(j: int, k: int, n: int, pos: int):
    cands = []
    if j >= 0:
        cands.append((pos - (j + n), "before", j, j + n))
    if k >= 0:
        cands.append((k - pos, "after", k, k + n))
    if not cands:
        return None
    cands.sort()
    return cands[0][1:]
