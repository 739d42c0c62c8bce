"""Near-duplicate search without all pairs: multi-index hashing for 64-bit phashes, an inverted
file (nearest-centroid cells) for CLIP embeddings, and connected components over the pairs found.

phash: split the 64 bits into `bands` bands; two hashes within Hamming distance max_dist differ
in at most max_dist // bands bits in some band (pigeonhole), so only hashes whose band values are
equal or (3 bands for distance 5) one bit apart are compared. Within a band the hashes are sorted;
equal band values are runs (hash i compared with i+1, i+2, ... while the value stays equal, the
active set shrinking), one-bit neighbours are found by binary search. The work is the number of
candidate pairs: ~n²·23/2^21 per band with 3 bands against n²/2^11 with 6 equal-match bands.

CLIP: exact blocked all-pairs up to `exact_max` vectors; above it, vectors go to their `probes`
nearest of ~n/cell_size centroids (a sample of the vectors, one k-means step) and only vectors that
share a cell are compared (approximate: a near-duplicate pair whose two vectors share none of their
nearest cells is missed; the benchmark measures the recall against the exact search).
"""
from __future__ import annotations

import numpy as np

BLOCK = 4096


def parse_phash(hexes: list[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in hexes], dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def phash_pairs(h: np.ndarray, max_dist: int = 5, bands: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of hashes within Hamming distance max_dist: enough pairs to give the same
    connected components as all pairs (each exact duplicate is chained to the previous one).

    With `bands` bands, two hashes within max_dist differ in at most r = max_dist // bands bits in
    some band (pigeonhole); r must be 0 (bands > max_dist: equal bands) or 1 (each band value is
    probed with each of its bits flipped too). The default, 3 bands of 21-22 bits with r = 1, keeps
    the candidate pairs near n * 23 * n / 2^21 per band instead of n² / 2^11 for 6 bands of 11 bits.
    """
    radius = max_dist // bands
    if radius > 1:
        raise ValueError(f"{bands} bands for distance {max_dist}: use at least {(max_dist + 2) // 2} bands")
    h = np.ascontiguousarray(h, dtype=np.uint64)
    n = len(h)
    # exact duplicates first: the search then runs over distinct values only
    uniq, inv = np.unique(h, return_inverse=True)
    pi, pj = [], []
    order = np.argsort(inv, kind="stable")
    sinv = inv[order]
    same = np.nonzero(sinv[1:] == sinv[:-1])[0]
    if len(same):  # chain each duplicate to its predecessor with the same value
        pi.append(order[same])
        pj.append(order[same + 1])
    first = np.full(len(uniq), -1, dtype=np.int64)
    first[sinv[::-1]] = order[::-1]  # an original index per distinct value
    widths = [64 // bands + (1 if b < 64 % bands else 0) for b in range(bands)]
    shift = 0
    for w in widths:
        band = (uniq >> np.uint64(shift)) & np.uint64((1 << w) - 1)
        shift += w
        o = np.argsort(band, kind="stable")
        bs, hs = band[o], uniq[o]
        if radius == 1:
            _probe_flips(bs, hs, o, first, w, max_dist, pi, pj)
        active = np.arange(len(uniq) - 1)
        k = 1
        while len(active):
            active = active[active + k < len(uniq)]
            active = active[bs[active + k] == bs[active]]
            if not len(active):
                break
            d = _popcount(hs[active] ^ hs[active + k])
            hit = active[d <= max_dist]
            if len(hit):
                pi.append(first[o[hit]])
                pj.append(first[o[hit + k]])
            k += 1
    if not pi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return _unique_pairs(np.concatenate(pi), np.concatenate(pj), n)


def _probe_flips(bs, hs, o, first, width, max_dist, pi, pj) -> None:
    """Pairs whose band values differ in exactly one bit: for each bit t, each hash whose band has t
    unset looks up the band value with t set (so each unordered pair is found once per band)."""
    idx = np.arange(len(bs))
    for t in range(width):
        bit = np.uint64(1 << t)
        src = idx[(bs & bit) == 0]
        q = bs[src] | bit
        lo = np.searchsorted(bs, q, "left")
        cnt = np.searchsorted(bs, q, "right") - lo
        m = cnt > 0
        if not m.any():
            continue
        src, lo, cnt = src[m], lo[m], cnt[m]
        total = int(cnt.sum())
        a = np.repeat(src, cnt)
        b = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
        hit = _popcount(hs[a] ^ hs[b]) <= max_dist
        if hit.any():
            pi.append(first[o[a[hit]]])
            pj.append(first[o[b[hit]]])


def _unique_pairs(i: np.ndarray, j: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    key = np.unique(i * n + j)
    return key // n, key % n


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component label per item (items in no pair get their own label)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _self_pairs(x: np.ndarray, ids: np.ndarray, threshold: float, out_i: list, out_j: list) -> None:
    """All pairs among rows of x (float32, unit) with cosine >= threshold, in row blocks."""
    n = len(x)
    for a in range(0, n, BLOCK):
        s = x[a:a + BLOCK] @ x[a:].T
        r, c = np.nonzero(s >= threshold)
        keep = c > r  # upper triangle: c counts from a, r from a
        r, c = r[keep] + a, c[keep] + a
        if len(r):
            out_i.append(ids[r])
            out_j.append(ids[c])


def clip_pairs_exact(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The all-pairs baseline: every pair with cosine >= threshold (blocked matmul)."""
    x = _unit(emb)
    pi: list = []
    pj: list = []
    _self_pairs(x, np.arange(len(x)), threshold, pi, pj)
    if not pi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pi), np.concatenate(pj)


def clip_pairs(emb: np.ndarray, threshold: float, exact_max: int = 20000, cell_size: int = 1000,
               probes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs with cosine >= threshold: exact up to exact_max vectors, inverted-file cells above."""
    n = len(emb)
    if n <= exact_max:
        return clip_pairs_exact(emb, threshold)
    rng = np.random.default_rng(seed)
    cells = max(2, n // cell_size)
    sample = _unit(emb[rng.choice(n, size=min(n, cells * 20), replace=False)])
    cent = sample[rng.choice(len(sample), size=cells, replace=False)]
    # one k-means step on the sample
    a = np.argmax(sample @ cent.T, axis=1)
    sums = np.zeros_like(cent)
    np.add.at(sums, a, sample)
    cnt = np.bincount(a, minlength=cells)
    cent = np.where(cnt[:, None] > 0, sums / np.maximum(cnt[:, None], 1), cent)
    cent = _unit(cent)
    probes = min(probes, cells)
    assign = np.empty((n, probes), dtype=np.int64)
    for b in range(0, n, BLOCK * 4):
        s = _unit(emb[b:b + BLOCK * 4]) @ cent.T
        assign[b:b + BLOCK * 4] = np.argpartition(-s, probes - 1, axis=1)[:, :probes]
    flat = assign.reshape(-1)
    owner = np.repeat(np.arange(n), probes)
    o = np.argsort(flat, kind="stable")
    flat, owner = flat[o], owner[o]
    bounds = np.searchsorted(flat, np.arange(cells + 1))
    pi: list = []
    pj: list = []
    for c in range(cells):
        ids = owner[bounds[c]:bounds[c + 1]]
        if len(ids) > 1:
            _self_pairs(_unit(emb[ids]), ids, threshold, pi, pj)
    if not pi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return _unique_pairs(np.concatenate(pi), np.concatenate(pj), n)
