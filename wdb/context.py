"""Word windows around media items, and where an alt text reappears in them (weak labels)."""
from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate

_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"\w+")
_TOKEN_SPLIT = re.compile(r"(\w+)")
try:  # the same cuts, in C (wdb/html/_scan.c)
    from .html._scan import tokens as _native_tokens
    from .html._scan import windows as _native_windows
except ImportError:
    _native_tokens = _native_windows = None
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


def windows(text: str, positions: list[int], words: int) -> list[tuple[int, int]]:
    """WordIndex(text).window(p, words) for each position: in C where built (one word pass per
    page, a binary search per position), else in Python."""
    if _native_windows is not None:
        return _native_windows(text, positions, words)
    w = WordIndex(text)
    return [w.window(p, words) for p in positions]


def find_alt(text: str, alt: str, lo: int, pos: int, hi: int) -> Match | None:
    """Where alt reappears in text[lo:pos] (before) or text[pos:hi] (after), nearest first.

    exact: the alt verbatim (whole words); normalised: equal after lower-casing and dropping
    punctuation and extra white space; partial: the best run of len(alt) words holding >= 60 % of
    the alt's words (score = that share).
    """
    done, want, window = _head(text, alt, lo, pos, hi, lambda: text[lo:hi].lower())
    if want is None:
        return done
    n = len(want)
    have = set(_TOKEN.findall(window))
    present = sum(1 for t in want if t in have)
    if present < n and (n < 2 or present < PARTIAL_MIN * n):
        return None
    if present == n:
        found = []
        for side, a, b in (("before", lo, pos), ("after", pos, hi)):
            toks = [(m.start(), m.end()) for m in _TOKEN.finditer(window, a - lo, b - lo)]
            first = _find_run([window[s:e] for s, e in toks], want, side == "before")
            if first is not None:
                found.append((side, lo + toks[first][0], lo + toks[first + n - 1][1]))
        if found:
            return _nearest_normalised(found, pos)
    if n < 2:
        return None
    return _partial(text, want, lo, pos, hi)


def _head(text: str, alt: str, lo: int, pos: int, hi: int, lowered):
    """The cheap part of a match, as (answer, tokens, lowered window).

    tokens is None when the answer is final: the exact match, or None where too few of the alt's
    tokens occur in the window even as substrings (C-level `in`: most alts stop here). Otherwise
    the token-level steps go on with the alt's tokens and lowered() == text[lo:hi].lower().
    """
    alt = alt.strip()
    if not alt:
        return None, None, None
    j = _bounded(text, alt, lo, pos, reverse=True)
    k = _bounded(text, alt, pos, hi)
    best = _nearest(j, k, len(alt), pos)
    if best:
        return Match(best[0], best[1], best[2], "exact", 1.0), None, None
    want = [t.lower() for t in _TOKEN.findall(alt)]
    if not want:
        return None, None, None
    window = lowered()
    n = len(want)
    if sum(1 for t in want if t in window) < max(1, PARTIAL_MIN * n) if n > 1 else want[0] not in window:
        return None, None, None
    return None, want, window


def _nearest_normalised(found: list[tuple[str, int, int]], pos: int) -> Match:
    side, s, e = min(found, key=lambda m: abs((m[2] if m[0] == "before" else m[1]) - pos))
    return Match(side, s, e, "normalised", 1.0)


def _find_run(words: list[str], want: list[str], before: bool) -> int | None:
    """Index of the first word of the run of words equal to want nearest the item (the last run
    before it, the first after it), or None."""
    joined, target = " ".join(words), " ".join(want)
    idx = joined.rfind(target) if before else joined.find(target)
    while idx >= 0:
        end = idx + len(target)
        if (idx == 0 or joined[idx - 1] == " ") and (end == len(joined) or joined[end] == " "):
            return joined.count(" ", 0, idx)
        idx = joined.rfind(target, 0, idx) if before else joined.find(target, idx + 1)
    return None


def _partial(text: str, want: list[str], lo: int, pos: int, hi: int) -> Match | None:
    sides = []
    for side, a, b in (("before", lo, pos), ("after", pos, hi)):
        toks = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text, a, b)]
        sides.append((side, [t[2] for t in toks], [t[0] for t in toks], [t[1] for t in toks]))
    return _best_run(sides, want, pos)


def _best_run(sides, want: list[str], pos: int) -> Match | None:
    """The partial match: over each side's (side, words, starts, ends), the run of len(want) words
    holding the largest share (>= PARTIAL_MIN) of the alt's words, nearest the item on ties.
    Only windows ending on one of the alt's words are scored (the others score no higher)."""
    n = len(want)
    need = Counter(want)
    best_m = None
    for side, side_words, starts, ends in sides:
        counts = Counter(side_words)
        if sum(min(c, counts[w]) for w, c in need.items()) < PARTIAL_MIN * n:
            continue
        hits = [i for i, w in enumerate(side_words) if w in need]
        have_c = dict.fromkeys(need, 0)
        matched = left = 0  # matched: sum over need of min(need, have) in the window of n words
        for i in hits:
            w = side_words[i]
            if have_c[w] < need[w]:
                matched += 1
            have_c[w] += 1
            while hits[left] < i - n + 1:
                w = side_words[hits[left]]
                have_c[w] -= 1
                if have_c[w] < need[w]:
                    matched -= 1
                left += 1
            if i < n - 1:
                continue
            score = matched / n
            if score >= PARTIAL_MIN:
                s, e = starts[hits[left]], ends[i]
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


class PageTokens:
    """A page's text lower-cased and cut into tokens once, for all the alt matches on the page.

    find_alt_page() gives what find_alt() gives; it falls back to it where a window edge cuts a
    token, or where lower-casing changes the text's length.
    """

    def __init__(self, text: str):
        self.text = text
        low = text.lower()
        self.ok = len(low) == len(text)
        self.low = low
        self.words: list[str] | None = None  # cut on first use: most alts never get that far

    def _cut(self) -> None:
        if _native_tokens is not None:
            self.words, self.starts, self.ends = _native_tokens(self.low)
            return
        parts = _TOKEN_SPLIT.split(self.low)
        acc = list(accumulate(map(len, parts)))
        self.words = parts[1::2]
        self.starts = acc[0:-1:2]
        self.ends = acc[1::2]

    def span(self, a: int, b: int) -> tuple[int, int] | None:
        """Token indices [i, j) inside text[a:b], or None where a token crosses a or b."""
        if self.words is None:
            self._cut()
        starts, ends = self.starts, self.ends
        i = bisect_left(starts, a)
        if i and ends[i - 1] > a:
            return None
        j = bisect_left(starts, b)
        if j and ends[j - 1] > b:
            return None
        return i, j


def find_alt_page(tk: PageTokens, alt: str, lo: int, pos: int, hi: int) -> Match | None:
    """find_alt(tk.text, alt, lo, pos, hi), with the page's tokens computed once."""
    text = tk.text
    if not tk.ok:
        return find_alt(text, alt, lo, pos, hi)
    done, want, _ = _head(text, alt, lo, pos, hi, lambda: tk.low[lo:hi])
    if want is None:
        return done
    n = len(want)
    before, after = tk.span(lo, pos), tk.span(pos, hi)
    if before is None or after is None:
        return find_alt(text, alt, lo, pos, hi)
    words = tk.words
    have = set(words[before[0]:before[1]])
    have.update(words[after[0]:after[1]])
    present = sum(1 for t in want if t in have)
    if present < n and (n < 2 or present < PARTIAL_MIN * n):
        return None
    starts, ends = tk.starts, tk.ends
    if present == n:
        found = []
        for side, (i0, i1) in (("before", before), ("after", after)):
            first = _find_run(words[i0:i1], want, side == "before")
            if first is not None:
                found.append((side, starts[i0 + first], ends[i0 + first + n - 1]))
        if found:
            return _nearest_normalised(found, pos)
    if n < 2:
        return None
    return _best_run([(side, words[i0:i1], starts[i0:i1], ends[i0:i1])
                      for side, (i0, i1) in (("before", before), ("after", after))], want, pos)
