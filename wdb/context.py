"""Word windows around media items, and where an alt text reappears in them (weak labels)."""
from __future__ import annotations

import re
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
    """Word windows around positions of one text (C-level str.split/rsplit with maxsplit)."""

    def __init__(self, text: str):
        self.text = text

    def window(self, pos: int, words: int) -> tuple[int, int]:
        """(start of the `words`-th word before pos, end of the `words`-th word after pos)."""
        text = self.text
        span = words * 16
        while True:  # after: grow the slice until it holds `words` words or reaches the end
            hi_cap = min(len(text), pos + span)
            after = text[pos:hi_cap]
            parts = after.split(None, words)
            if len(parts) > words:
                hi = pos + len(after[: len(after) - len(parts[-1])].rstrip())
                break
            if hi_cap == len(text):
                hi = pos + len(after.rstrip())
                break
            span *= 4
        span = words * 16
        while True:
            lo_cap = max(0, pos - span)
            before = text[lo_cap:pos]
            parts = before.rsplit(None, words)
            if len(parts) > words:
                rest = before[len(parts[0]):]
                lo = pos - len(rest.lstrip())
                break
            if lo_cap == 0:
                lo = pos - len(before.lstrip())
                break
            span *= 4
        return lo, hi


def find_alt(text: str, alt: str, lo: int, pos: int, hi: int) -> Match | None:
    """Where alt reappears in text[lo:pos] (before) or text[pos:hi] (after), nearest first.

    exact: the alt verbatim (whole words); normalised: equal after lower-casing and dropping
    punctuation and extra white space; partial: the best run of len(alt) words holding >= 60 % of
    the alt's words (score = that share).
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
    window = text[lo:hi].lower()
    n = len(want)
    # substring test first (C-level, most alts stop here), then whole tokens
    if sum(1 for t in want if t in window) < max(1, PARTIAL_MIN * n) if n > 1 else want[0] not in window:
        return None
    have = set(_TOKEN.findall(window))
    present = sum(1 for t in want if t in have)
    if present < n and (n < 2 or present < PARTIAL_MIN * n):
        return None
    if present == n:
        found = []
        for side, a, b in (("before", lo, pos), ("after", pos, hi)):
            toks = [(m.start(), m.end()) for m in _TOKEN.finditer(window, a - lo, b - lo)]
            joined = " ".join(window[s:e] for s, e in toks)
            target = " ".join(want)
            idx = joined.rfind(target) if side == "before" else joined.find(target)
            while idx >= 0:
                end = idx + len(target)
                if (idx == 0 or joined[idx - 1] == " ") and (end == len(joined) or joined[end] == " "):
                    first = joined.count(" ", 0, idx)
                    found.append((side, lo + toks[first][0], lo + toks[first + n - 1][1]))
                    break
                idx = joined.rfind(target, 0, idx) if side == "before" else joined.find(target, idx + 1)
        if found:
            found.sort(key=lambda m: abs((m[2] if m[0] == "before" else m[1]) - pos))
            side, s, e = found[0]
            return Match(side, s, e, "normalised", 1.0)
    if n < 2:
        return None
    return _partial(text, want, lo, pos, hi)


def _partial(text: str, want: list[str], lo: int, pos: int, hi: int) -> Match | None:
    n = len(want)
    need = Counter(want)
    best_m = None
    for side, a, b in (("before", lo, pos), ("after", pos, hi)):
        toks = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text, a, b)]
        words = [t[2] for t in toks]
        counts = Counter(words)
        if sum(min(c, counts[w]) for w, c in need.items()) < PARTIAL_MIN * n:
            continue
        have: Counter = Counter()
        for i, w in enumerate(words):
            have[w] += 1
            if i >= n:
                have[words[i - n]] -= 1
            if i >= n - 1 and w in need:
                score = sum(min(c, have[w2]) for w2, c in need.items()) / n
                if score >= PARTIAL_MIN:
                    start = i - n + 1
                    hits = [r for r in range(start, i + 1) if words[r] in need]
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
