"""Check and describe image bytes: mime, size, frames, sha256, perceptual hash (pure)."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

MAX_PIXELS = 64_000_000
MAX_FRAMES = 64


class ImageProblem(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ImageInfo:
    mime: str | None
    width: int
    height: int
    frames: int
    sha256: str
    phash: str | None


def probe(body: bytes, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES) -> ImageInfo:
    """Decode enough of an image to trust it. Raises ImageProblem('bomb' | 'undecodable')."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(body))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageProblem("bomb", f"decompression bomb: {e}") from e
        except Exception as e:  # noqa: BLE001 -- Pillow raises many types on bad input
            raise ImageProblem("undecodable", f"{type(e).__name__}: {e}") from e
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageProblem("bomb", f"{w}x{h} pixels is over the cap of {max_pixels}")
            frames = getattr(im, "n_frames", 1) or 1
            mime = Image.MIME.get(im.format or "")
            try:
                im.draft("RGB", (256, 256))  # JPEG: decode at reduced scale, cheap
                im.load()
                first = im.convert("RGB")
                for k in range(1, min(frames, max_frames)):  # animated: decode at most max_frames
                    im.seek(k)
                    im.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                raise ImageProblem("bomb", f"decompression bomb: {e}") from e
            except Exception as e:  # noqa: BLE001
                raise ImageProblem("undecodable", f"{type(e).__name__}: {e}") from e
    phash = None
    try:
        import imagehash

        phash = str(imagehash.phash(first))
    except ImportError:
        pass
    return ImageInfo(mime, w, h, frames, hashlib.sha256(body).hexdigest(), phash)


def decode_rgb(body: bytes, max_pixels: int = MAX_PIXELS):
    """A PIL RGB image of the first frame (for scoring), with the same pixel cap."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(body))
        if im.size[0] * im.size[1] > max_pixels:
            raise ImageProblem("bomb", "over the pixel cap")
        return im.convert("RGB")
