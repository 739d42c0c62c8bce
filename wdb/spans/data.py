"""Training data for the span extractor: image contexts from the database, labelled by the alt
text matches found at ingest, split by site. Pure Python: no torch here."""
from __future__ import annotations

import hashlib
import random
import re
import sqlite3
from dataclasses import dataclass

MARKER = "[IMG]"
SHIFT = len(MARKER) + 2  # the marker and a space on each side


@dataclass
class Example:
    media_id: int
    domain: str
    context: str  # text before + " [IMG] " + text after
    cs: int  # page offset where the context starts
    pos: int  # page offset of the image
    label: tuple[int, int] | None  # character span in context; None: no description
    kind: str  # exact | normalised | partial | none | unlabelled
    figcaption: tuple[int, int] | None = None  # span of the image's <figcaption> in context
    key: tuple = ()  # (page URL, record offset, position in page): an order that ids do not change

    @property
    def before_len(self) -> int:
        return self.pos - self.cs

    def to_page(self, start: int, end: int) -> tuple[int, int]:
        """Context character span -> page text span (the marker maps to the image position)."""
        def one(y: int) -> int:
            if y <= self.before_len:
                return self.cs + y
            return self.cs + max(self.before_len, y - SHIFT)

        return one(start), one(end)

    def page_text(self, start: int, end: int) -> str:
        """The page text of a page span inside this context (the marker is not page text)."""
        b = self.before_len
        plain = self.context[:b] + self.context[b + SHIFT:]
        return plain[start - self.cs:end - self.cs]

    def to_context(self, start: int, end: int) -> tuple[int, int]:
        """Page text span -> context span (a span ending at the image ends before the marker)."""
        s = start - self.cs if start < self.pos else start - self.cs + SHIFT
        e = end - self.cs if end <= self.pos else end - self.cs + SHIFT
        return s, e


def make_example(media_id: int, domain: str, text: str, cs: int, pos: int, ce: int,
                 match: tuple[int, int, str] | None, figcaption: str | None, labelled: bool) -> Example:
    context = text[cs:pos] + " " + MARKER + " " + text[pos:ce]
    ex = Example(media_id, domain or "", context, cs, pos, None, "unlabelled")
    if labelled:
        if match is not None:
            ex.label = ex.to_context(match[0], match[1])
            ex.kind = match[2]
        else:
            ex.kind = "none"
    if figcaption:
        ex.figcaption = _nearest(context, figcaption, ex.before_len)
    return ex


def _nearest(context: str, needle: str, at: int) -> tuple[int, int] | None:
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(needle), context)]
    if not spans:
        return None
    return min(spans, key=lambda s: min(abs(s[0] - at), abs(s[1] - at)))


ITEMS_SQL = """
SELECT m.id, p.id, p.domain, m.ctx_start, m.pos, m.ctx_end, x.start, x."end", x.kind, m.figcaption, m.alt,
       p.url, p."offset", m.seq
FROM media m JOIN pages p ON p.id = m.page_id LEFT JOIN alt_matches x ON x.media_id = m.id
WHERE m.kind = 'image' AND m.pos IS NOT NULL {where}
ORDER BY p.id, m.seq
"""


def iter_examples(conn: sqlite3.Connection, where: str = "", params: tuple = (), labelled: bool = True,
                  words: int | None = None):
    """Examples for the selected images, reading each page's text once.

    words: narrow the stored context windows to this many words each side; a match outside the
    narrowed window makes the example "outside" (not a negative: its description is elsewhere).
    """
    from ..context import WordIndex

    page_id, text, index = None, "", None
    for mid, pid, domain, cs, pos, ce, xs, xe, xk, fig, alt, url, off, seq in conn.execute(
            ITEMS_SQL.format(where=where), params):
        if pid != page_id:
            page_id = pid
            text = conn.execute("SELECT text FROM pages WHERE id = ?", (pid,)).fetchone()[0]
            index = WordIndex(text)
        if words is not None:
            lo, hi = index.window(pos, words)
            cs, ce = max(cs, lo), min(ce, hi)
        match = (xs, xe, xk) if xs is not None else None
        ex = make_example(mid, domain, text, cs, pos, ce, match, fig, labelled and alt is not None)
        ex.key = (url, off, seq)
        if match is not None and labelled and not (cs <= xs and xe <= ce):
            ex.label, ex.kind = None, "outside"
        yield ex


LABELS = ("alt", "figcaption")


def label_figcaption(e: Example) -> Example:
    """With `--labels alt,figcaption`: an example without an alt match whose figcaption was found in
    its context takes that figcaption as its label (kind "figcaption"). The one rule, for training
    and for evaluating what training saw."""
    if e.label is None and e.kind in ("none", "unlabelled") and e.figcaption is not None:
        e.label, e.kind = e.figcaption, "figcaption"
    return e


def load_training_examples(conn: sqlite3.Connection, seed: int, negatives: float = 1.0,
                           max_examples: int | None = None, words: int | None = None,
                           labels: tuple[str, ...] = ("alt",), by_site: bool = True) -> list[Example]:
    """Every image of every ingested page whose alt text reappears in its context is a positive
    (kind exact | normalised | partial); images whose alt text does not reappear are negatives (no
    span), `negatives` per positive, drawn site by site with the seed. With "figcaption" in `labels`, an
    image whose `<figcaption>` text is found in its context (and whose alt is not) is a positive
    of kind "figcaption" too. by_site=False draws the negatives from the whole pool instead of site
    by site (`sample_negatives`; the benchmark's comparison)."""
    bad = [x for x in labels if x not in LABELS]
    if bad or "alt" not in labels:
        raise ValueError(f"labels: alt, optionally with figcaption (alt,figcaption), not {','.join(labels)}")
    fig = "figcaption" in labels
    where = "AND (m.alt IS NOT NULL OR m.figcaption IS NOT NULL)" if fig else "AND m.alt IS NOT NULL"
    # sampled in an order of content, not of row ids (which depend on how ingest was scheduled)
    rows = []
    for e in iter_examples(conn, where, words=words):
        rows.append(label_figcaption(e) if fig else e)
    rows.sort(key=lambda e: e.key)
    pos = [e for e in rows if e.label is not None]
    rng = random.Random(seed)
    if by_site:
        out = pos + sample_negatives(rows, negatives, rng)
    else:
        neg = [e for e in rows if e.kind == "none"]
        rng.shuffle(neg)
        out = pos + neg[: int(round(len(pos) * negatives))]
    if max_examples is not None and len(out) > max_examples:
        rng.shuffle(out)
        out = out[:max_examples]
    out.sort(key=lambda e: e.key)
    return out


def sample_negatives(rows: list[Example], negatives: float, rng: random.Random) -> list[Example]:
    """`negatives` "none" examples per positive, drawn site by site: a site gives at most
    `negatives` times its own positives (a fractional quota rounds up or down by the seed), from its
    own images. Drawn from the whole pool instead, the sites with many unmatched images (one corpus
    site holds half of them, two more another quarter) would make most "none" examples: the model
    learns those sites' look as the sign of "none", and a split's "none" share is one site's."""
    by_site: dict[str, tuple[int, list[Example]]] = {}
    for e in rows:
        n, neg = by_site.get(e.domain, (0, []))
        if e.label is not None:
            n += 1
        elif e.kind == "none":
            neg.append(e)
        by_site[e.domain] = (n, neg)
    out = []
    for site in sorted(by_site):
        n, neg = by_site[site]
        quota = negatives * n
        k = int(quota) + (rng.random() < quota - int(quota))
        rng.shuffle(neg)
        out.extend(neg[:k])
    return out


def split_by_domain(examples: list[Example], seed: int, val: float = 0.15, test: float = 0.15) -> dict[int, str]:
    """media_id -> train | validation | test; a domain lies in one split only. Domains are taken in
    a seeded order and fill test, then validation, to their share of the positive examples and of
    the "none" examples (so that both splits hold both, and the none threshold can be chosen on
    validation). A site with more positives than a split's share trains."""
    domains: dict[str, list[Example]] = {}
    for e in examples:
        domains.setdefault(e.domain, []).append(e)
    order = sorted(domains, key=lambda d: hashlib.sha256(f"{seed}:{d}".encode()).hexdigest())
    positives = sum(1 for e in examples if e.label is not None) or 1
    nones = sum(1 for e in examples if e.label is None)
    want = {"test": (test * positives, test * nones), "validation": (val * positives, val * nones)}
    filled = {name: [0, 0] for name in want}
    split_of: dict[str, str] = {}
    for d in order:
        pos = sum(1 for e in domains[d] if e.label is not None)
        neg = len(domains[d]) - pos
        split_of[d] = "train"
        for name, (wp, wn) in want.items():
            if pos > wp:
                break  # a big site: it trains
            f = filled[name]
            if (pos and f[0] < wp) or (neg and f[1] < wn and f[0] + pos <= 1.5 * wp):
                split_of[d] = name
                f[0] += pos
                f[1] += neg
                break
    return {e.media_id: split_of[e.domain] for e in examples}
