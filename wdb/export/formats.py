"""The export formats: each writes one shard's files under temporary names and says which pairs failed.

| format | per shard | top level |
|---|---|---|
| webdataset | NAME.tar (KEY.jpg/png/webp, KEY.txt, KEY.json), NAME.parquet, NAME_stats.json | sizes.json |
| parquet | NAME.parquet (DataComp pool columns + wdb's), NAME_stats.json | |
| img2dataset | NAME.parquet (url, caption, sha256, uid), NAME_stats.json | |
| uids | uids.npy (sorted u8,u8), uids_stats.json | |
| interleaved | NAME.parquet (OBELICS: texts, images, metadata, general_metadata), NAME_stats.json | |
| tar-in-tar | NAME.tar (one PAGEKEY.tar per page: 0.jpg, 0.txt, 0.json, ..., page.txt, page.json), NAME_stats.json | sizes.json |
| txt-media-txt | NAME.parquet (one row per page: its text-media-text samples), NAME_stats.json | |
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .images import Undecodable, prepare
from .pairs import Pair, uid_halves
from .shards import (Failure, Outcome, Shard, TarWriter, by_page, dumps, plan_pages, plan_pairs, tar_bytes,
                     tmp_path, write_parquet)


@dataclass
class Ctx:
    conn: object
    settings: object
    read: Callable[[Pair], tuple]      # pair -> (bytes | None, Issue | None)
    page_text: Callable[[int], str]
    tick: Callable[[], None] = lambda: None   # one pair done (progress, crash injection)


def _key(p: Pair) -> str:
    return f"{p.index:09d}"


def _pointer_cols(p: Pair) -> dict:
    return {"media_id": p.media_id, "page_url": p.page_url, "text_source": p.text_source, "kind": p.kind,
            "source": p.source, "warc": p.location, "warc_offset": p.offset, "warc_length": p.length,
            "warc_inner": p.inner, "mime": p.mime}


def _scores(p: Pair) -> dict:
    return {"clip_b32_similarity_score": p.score("ViT-B-32"), "clip_l14_similarity_score": p.score("ViT-L-14")}


def _fail(fails: list, p: Pair, issue) -> None:
    fails.append(Failure(p, issue.kind, issue.message))


def _read_checked(ctx: Ctx, p: Pair, fails: list) -> bytes | None:
    data, issue = ctx.read(p)
    if issue:
        _fail(fails, p, issue)
    return data


def _verified(ctx: Ctx, p: Pair, fails: list) -> bool:
    """True unless verification is on and the pair's bytes fail it (then it is listed in fails)."""
    return not (ctx.settings.verify and p.location is not None) or _read_checked(ctx, p, fails) is not None


def _schema(fields: list[tuple[str, str]]):
    import pyarrow as pa

    types = {"s": pa.string(), "i": pa.int64(), "f": pa.float64(), "b": pa.binary()}
    return pa.schema([(n, types[t]) for n, t in fields])


_PTR = [("media_id", "i"), ("page_url", "s"), ("text_source", "s"), ("kind", "s"), ("source", "s"), ("warc", "s"),
        ("warc_offset", "i"), ("warc_length", "i"), ("warc_inner", "i"), ("mime", "s")]
_SCORE = [("clip_b32_similarity_score", "f"), ("clip_l14_similarity_score", "f")]


class Format:
    name = ""

    def plan(self, pairs: list[Pair], s) -> list[Shard]:
        return plan_pairs(pairs, s.shard_size)

    def files(self, shard: Shard) -> list[str]:
        """Final file names of a shard, its stats file last."""
        return [f"{shard.name}.parquet", f"{shard.name}_stats.json"]

    def write(self, shard: Shard, out: Path, ctx: Ctx) -> Outcome:
        raise NotImplementedError

    def finish(self, out: Path, outcomes: list[Outcome]) -> dict[str, bytes]:
        return {}


def stats_json(out: Outcome, extra: dict | None = None) -> bytes:
    kinds: dict[str, int] = {}
    for f in out.failures:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    return dumps({"count": len(out.shard.pairs), "successes": len(out.shard.pairs) - len(out.failures),
                  "failed": len(out.failures), "status_dict": {"success": len(out.shard.pairs) - len(out.failures),
                                                               **kinds},
                  "failures": [f.as_json() for f in out.failures], **(extra or {})})


class WebDataset(Format):
    """img2dataset's webdataset layout, which open_clip's training reads."""
    name = "webdataset"
    schema_fields = [("key", "s"), ("uid", "s"), ("url", "s"), ("caption", "s"), ("status", "s"),
                     ("error_message", "s"), ("width", "i"), ("height", "i"), ("original_width", "i"),
                     ("original_height", "i"), ("sha256", "s")] + _PTR + _SCORE

    def files(self, shard):
        return [f"{shard.name}.tar", f"{shard.name}.parquet", f"{shard.name}_stats.json"]

    def write(self, shard, out, ctx):
        res, rows = Outcome(shard), []
        tar = TarWriter(tmp_path(out / f"{shard.name}.tar"))
        s = ctx.settings
        for p in shard.pairs:
            key, n_fail = _key(p), len(res.failures)
            row = {"key": key, "uid": p.uid, "url": p.url, "caption": p.text, "status": "success",
                   "error_message": None, "width": None, "height": None, "original_width": p.width,
                   "original_height": p.height, "sha256": p.sha256, **_pointer_cols(p), **_scores(p)}
            data = _read_checked(ctx, p, res.failures)
            if data is not None:
                try:
                    img, ext, w, h, ow, oh = prepare(data, s.resize, p.width, p.height)
                except Undecodable as e:
                    res.failures.append(Failure(p, "undecodable", str(e)))
                else:
                    row.update(width=w, height=h, original_width=ow, original_height=oh)
                    meta = {k: row[k] for k in ("uid", "key", "url", "caption", "width", "height", "original_width",
                                                "original_height", "sha256", "status", "error_message")}
                    meta.update(_pointer_cols(p), page_warc=p.page_warc, page_offset=p.page_offset,
                                page_length=p.page_length, scores=p.scores, **_scores(p),
                                **{f"recipe_{k}": v for k, v in p.extra.items()})
                    tar.add(f"{key}.{ext}", img)
                    tar.add(f"{key}.txt", p.text.encode("utf-8", "surrogatepass"))
                    tar.add(f"{key}.json", json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str).encode())
            if len(res.failures) > n_fail:
                row.update(status="failed_to_download", error_message=f"{res.failures[-1].kind}: "
                           f"{res.failures[-1].message}")
            rows.append(row)
            ctx.tick()
        tar.close()
        write_parquet(tmp_path(out / f"{shard.name}.parquet"), rows, _schema(self.schema_fields))
        tmp_path(out / f"{shard.name}_stats.json").write_bytes(stats_json(res))
        return res

    def finish(self, out, outcomes):
        return {"sizes.json": dumps({f"{o.shard.name}.tar": len(o.written) for o in outcomes})}


class Pool(Format):
    """DataComp's pool parquet: its columns, then wdb's own."""
    name = "parquet"
    schema_fields = [("uid", "s"), ("url", "s"), ("text", "s"), ("original_width", "i"), ("original_height", "i"),
                     *_SCORE, ("sha256", "s"), *_PTR, ("scores", "s"), ("recipe_columns", "s")]

    def row(self, p: Pair) -> dict:
        return {"uid": p.uid, "url": p.url, "text": p.text, "original_width": p.width, "original_height": p.height,
                **_scores(p), "sha256": p.sha256, **_pointer_cols(p),
                "scores": json.dumps(p.scores, sort_keys=True),
                "recipe_columns": json.dumps(p.extra, sort_keys=True, default=str)}

    def write(self, shard, out, ctx):
        res = Outcome(shard)
        rows = []
        for p in shard.pairs:
            ctx.tick()
            if _verified(ctx, p, res.failures):
                rows.append(self.row(p))
        write_parquet(tmp_path(out / f"{shard.name}.parquet"), rows, _schema(self.schema_fields))
        tmp_path(out / f"{shard.name}_stats.json").write_bytes(stats_json(res))
        return res


class Img2Dataset(Pool):
    """url/caption parquet for `img2dataset --url_col url --caption_col caption --verify_hash '["sha256","sha256"]'`."""
    name = "img2dataset"
    schema_fields = [("url", "s"), ("caption", "s"), ("sha256", "s"), ("uid", "s"), ("width", "i"), ("height", "i"),
                     ("page_url", "s"), ("text_source", "s")]

    def row(self, p):
        return {"url": p.url, "caption": p.text, "sha256": p.sha256, "uid": p.uid, "width": p.width,
                "height": p.height, "page_url": p.page_url, "text_source": p.text_source}


class Uids(Pool):
    """DataComp's subset file: a sorted numpy array of dtype u8,u8 (each uid as two 64-bit halves)."""
    name = "uids"

    def plan(self, pairs, s):
        return [Shard("uids", pairs)]

    def files(self, shard):
        return ["uids.npy", "uids_stats.json"]

    def write(self, shard, out, ctx):
        import numpy as np

        res = Outcome(shard)
        for p in shard.pairs:
            ctx.tick()
            _verified(ctx, p, res.failures)
        arr = np.array(sorted(uid_halves(p.uid) for p in res.written), dtype=np.dtype("u8,u8"))
        with open(tmp_path(out / "uids.npy"), "wb") as f:
            np.save(f, arr)
        tmp_path(out / "uids_stats.json").write_bytes(stats_json(res))
        return res


def _cut(text: str, items: list[Pair]) -> list[tuple[str | None, Pair | None]]:
    """The page text cut at each item's position: [(text, None) | (None, item)], no empty texts."""
    seq, at = [], 0
    for p in items:
        if p.pos > at:
            seq.append((text[at:p.pos], None))
        seq.append((None, p))
        at = max(at, p.pos)
    if at < len(text):
        seq.append((text[at:], None))
    return seq


def _flow(items: list[Pair], failures: list, cap: int | None) -> list[Pair]:
    """Items in the text flow, at most `cap` per document; the others are failures with their reason."""
    kept = []
    for p in items:
        if p.pos is None:
            failures.append(Failure(p, "not_in_text_flow", "the item has no position in the page text"))
        elif cap is not None and len(kept) >= cap:
            failures.append(Failure(p, "over_image_cap", f"more than {cap} items in the document"))
        else:
            kept.append(p)
    return kept


def _general(p: Pair) -> dict:
    return {"url": p.page_url, "warc_filename": p.page_warc, "warc_record_offset": p.page_offset,
            "warc_record_length": p.page_length}


_STR = {"dtype": "string", "_type": "Value"}
HF_FEATURES = {"texts": [_STR], "images": [{"_type": "Image"}], "metadata": _STR, "general_metadata": _STR}


class Interleaved(Format):
    """OBELICS' documents: parallel `texts` / `images` lists (one non-null per position), `metadata`
    and `general_metadata` as JSON strings; images as URLs or embedded bytes."""
    name = "interleaved"

    def plan(self, pairs, s):
        return plan_pages(pairs, s.shard_size)

    def write(self, shard, out, ctx):
        import pyarrow as pa

        embed = ctx.settings.images == "embed"
        res, rows = Outcome(shard), []
        for items in by_page(shard.pairs):
            text = ctx.page_text(items[0].page_id)
            flow = _flow(items, res.failures, ctx.settings.max_images)
            for _ in range(len(items) - len(flow)):  # left out of the flow: counted as done
                ctx.tick()
            imgs = {}
            for p in flow:
                ctx.tick()
                if embed or (ctx.settings.verify and p.location is not None):
                    data = _read_checked(ctx, p, res.failures)
                    if data is None:
                        continue
                    imgs[p.index] = data
                else:
                    imgs[p.index] = None
            kept = [p for p in flow if p.index in imgs]
            texts, images, metadata = [], [], []
            for t, p in _cut(text, kept):
                texts.append(t)
                if p is None:
                    images.append(None)
                    metadata.append(None)
                else:
                    images.append({"bytes": imgs[p.index], "path": p.url} if embed else p.url)
                    metadata.append({"document_url": p.page_url, "unformatted_src": p.url, "src": p.url,
                                     "formatted_filename": p.url.rsplit("/", 1)[-1].split("?")[0],
                                     "alt_text": p.alt, "rendered_width": p.render_width,
                                     "rendered_height": p.render_height, "uid": p.uid, "media_id": p.media_id,
                                     "text": p.text, "text_source": p.text_source, "sha256": p.sha256,
                                     "pos": p.pos, "original_width": p.width, "original_height": p.height})
            rows.append({"texts": texts, "images": images, "metadata": json.dumps(metadata, ensure_ascii=False),
                         "general_metadata": json.dumps(_general(items[0]), ensure_ascii=False)})
        img_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())]) if embed else pa.string()
        schema = pa.schema([("texts", pa.list_(pa.string())), ("images", pa.list_(img_t)),
                            ("metadata", pa.string()), ("general_metadata", pa.string())])
        if embed:  # Hugging Face `datasets` reads the embedded images as a list of Image features
            schema = schema.with_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})
        write_parquet(tmp_path(out / f"{shard.name}.parquet"), rows, schema)
        tmp_path(out / f"{shard.name}_stats.json").write_bytes(stats_json(res))
        return res


class TarInTar(Format):
    """One inner tar per page: 0.jpg, 0.txt, 0.json, ... and page.txt (the page text), page.json."""
    name = "tar-in-tar"

    def plan(self, pairs, s):
        return plan_pages(pairs, s.shard_size)

    def files(self, shard):
        return [f"{shard.name}.tar", f"{shard.name}_stats.json"]

    def write(self, shard, out, ctx):
        res = Outcome(shard)
        tar = TarWriter(tmp_path(out / f"{shard.name}.tar"))
        for items in by_page(shard.pairs):
            members, listed = [], []
            for p in items:
                data = _read_checked(ctx, p, res.failures)
                ctx.tick()
                if data is None:
                    continue
                try:
                    img, ext, w, h, ow, oh = prepare(data, ctx.settings.resize, p.width, p.height)
                except Undecodable as e:
                    res.failures.append(Failure(p, "undecodable", str(e)))
                    continue
                i = len(listed)
                meta = {"uid": p.uid, "url": p.url, "caption": p.text, "text_source": p.text_source, "pos": p.pos,
                        "width": w, "height": h, "original_width": ow, "original_height": oh, "sha256": p.sha256,
                        **_pointer_cols(p), "scores": p.scores}
                members += [(f"{i}.{ext}", img), (f"{i}.txt", p.text.encode("utf-8", "surrogatepass")),
                            (f"{i}.json", json.dumps(meta, sort_keys=True, ensure_ascii=False).encode())]
                listed.append({"member": f"{i}.{ext}", "uid": p.uid, "pos": p.pos})
            if not listed:
                continue
            members += [("page.txt", ctx.page_text(items[0].page_id).encode("utf-8", "surrogatepass")),
                        ("page.json", json.dumps({**_general(items[0]), "items": listed}, sort_keys=True,
                                                 ensure_ascii=False).encode())]
            tar.add(f"{items[0].page_id:09d}.tar", tar_bytes(members))
        tar.close()
        tmp_path(out / f"{shard.name}_stats.json").write_bytes(stats_json(res))
        return res

    finish = WebDataset.finish  # sizes.json: tar basename -> samples, as open_clip reads it


class TxtMediaTxt(Format):
    """One row per page with all its TXT-MEDIA-TXT samples (image, audio and video alike)."""
    name = "txt-media-txt"

    def plan(self, pairs, s):
        return plan_pages(pairs, s.shard_size)

    def write(self, shard, out, ctx):
        import pyarrow as pa

        res, rows = Outcome(shard), []
        for items in by_page(shard.pairs):
            text = ctx.page_text(items[0].page_id)
            samples = []
            flow = _flow(items, res.failures, None)
            for _ in range(len(items) - len(flow)):  # left out of the flow: counted as done
                ctx.tick()
            for p in flow:
                ctx.tick()
                if not _verified(ctx, p, res.failures):
                    continue
                a = p.ctx_start if p.ctx_start is not None else p.pos
                b = p.ctx_end if p.ctx_end is not None else p.pos
                samples.append({"uid": p.uid, "kind": p.kind, "url": p.url, "text": p.text,
                                "text_source": p.text_source, "text_before": text[a:p.pos],
                                "text_after": text[p.pos:b], "pos": p.pos, "sha256": p.sha256})
            if samples:
                rows.append({"url": items[0].page_url, "samples": samples,
                             "general_metadata": json.dumps(_general(items[0]), ensure_ascii=False)})
        sample_t = pa.struct([("uid", pa.string()), ("kind", pa.string()), ("url", pa.string()),
                              ("text", pa.string()), ("text_source", pa.string()), ("text_before", pa.string()),
                              ("text_after", pa.string()), ("pos", pa.int64()), ("sha256", pa.string())])
        schema = pa.schema([("url", pa.string()), ("samples", pa.list_(sample_t)), ("general_metadata", pa.string())])
        write_parquet(tmp_path(out / f"{shard.name}.parquet"), rows, schema)
        tmp_path(out / f"{shard.name}_stats.json").write_bytes(stats_json(res))
        return res


FORMATS = {f.name: f for f in (WebDataset(), Pool(), Uids(), Img2Dataset(), Interleaved(), TarInTar(), TxtMediaTxt())}
