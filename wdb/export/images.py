"""Image bytes as trainers read them: JPEG, PNG and WebP pass through untouched; anything else (GIF,
BMP, TIFF, ICO, ...) is re-encoded as JPEG; `resize` shrinks the shorter side to that many pixels
keeping the aspect ratio (img2dataset's `keep_ratio`, only when larger). Deterministic: the same
bytes give the same output bytes."""
from __future__ import annotations

import io

MAX_PIXELS = 64_000_000
JPEG_QUALITY = 95


class Undecodable(Exception):
    """The payload is not an image Pillow can decode within the pixel cap."""


def sniff(data: bytes) -> str | None:
    """jpg | png | webp for the formats trainers read as they are, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _open(data: bytes):
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise Undecodable(f"{w}x{h} pixels over the {MAX_PIXELS:,} cap")
        return im
    except Undecodable:
        raise
    except Exception as e:
        raise Undecodable(" ".join(f"{type(e).__name__}: {e}".split())[:200]) from e


def size_of(data: bytes) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    return _open(data).size


def prepare(data: bytes, resize: int | None = None, width: int | None = None,
            height: int | None = None) -> tuple[bytes, str, int, int, int, int]:
    """(bytes, extension, width, height, original width, original height) of the image to write."""
    ext = sniff(data)
    if ext and not resize:
        if not (width and height):
            width, height = size_of(data)
        return data, ext, width, height, width, height
    im = _open(data)
    ow, oh = im.size
    try:
        im.seek(0)
        if resize and min(ow, oh) > resize:
            s = resize / min(ow, oh)
            im.draft("RGB", (max(1, round(ow * s)), max(1, round(oh * s))))
            im = im.convert("RGB").resize((max(1, round(ow * s)), max(1, round(oh * s))), 3)  # bicubic
        elif ext and resize:
            return data, ext, ow, oh, ow, oh  # not larger: the original bytes
        else:
            im = im.convert("RGB")
        out = io.BytesIO()
        im.save(out, "JPEG", quality=JPEG_QUALITY)
    except Exception as e:
        raise Undecodable(" ".join(f"{type(e).__name__}: {e}".split())[:200]) from e
    return out.getvalue(), "jpg", im.size[0], im.size[1], ow, oh
