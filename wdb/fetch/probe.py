"""Check and describe image bytes: mime, size, frames, sha256, perceptual hash (pure, memory-bounded)."""
from __future__ import annotations

import hashlib
import io
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

from .limits import ByteBudget

MAX_PIXELS = 64_000_000
MAX_FRAMES = 64
MAX_DECODE_BYTES = 128 << 20  # per image: 32 Mpx RGB(A), 128 Mpx palette or grey (the pixel cap comes first)
DECODE_BUDGET = 512 << 20  # all fetch threads together
THUMB = 256  # JPEG draft target, and long side of the reduced copy the perceptual hash is computed from


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


def decode_bytes(mode: str, width: int, height: int, frames: int = 1) -> int:
    """Bytes Pillow holds to decode an image: pixels x bytes per pixel as it stores them (1 for 1/L/P,
    2 for I;16, 4 otherwise); animated images keep about three RGBA frames (current, previous, disposal)."""
    if frames > 1:
        return width * height * 4 * 3
    return width * height * (1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4)


def probe(body: bytes, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES, *,
          max_decode_bytes: int = MAX_DECODE_BYTES, budget: ByteBudget | None = None) -> ImageInfo:
    """Decode enough of an image to trust it, within a memory bound: JPEGs decode at a reduced scale,
    the decode buffer is sized from the header before any pixel is decoded (over max_decode_bytes:
    'too_large'), and is taken from the shared budget while it lives. Raises ImageProblem('bomb' |
    'too_large' | 'undecodable'); Stopped if the run stops while waiting for the budget."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Palette images with Transparency", UserWarning)  # converted as asked
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
            try:
                frames = getattr(im, "n_frames", 1) or 1
                im.draft("RGB", (THUMB, THUMB))  # JPEG: decode at reduced scale, cheap
            except Exception as e:  # noqa: BLE001
                raise ImageProblem("undecodable", f"{type(e).__name__}: {e}") from e
            mime = Image.MIME.get(im.format or "")
            need = decode_bytes(im.mode, im.size[0], im.size[1], min(frames, max_frames))
            if need > max_decode_bytes:
                raise ImageProblem("too_large", f"decoding {w}x{h} {im.mode} needs {need >> 20} MiB, over the "
                                                f"per-image decode bound of {max_decode_bytes >> 20} MiB")
            with budget.take(need) if budget is not None else nullcontext():
                try:
                    im.load()
                    scale = max(im.size) / THUMB
                    small = im.resize((max(1, round(im.size[0] / scale)), max(1, round(im.size[1] / scale))),
                                      Image.Resampling.BOX) if scale > 2 else im
                    first = small.convert("RGB")  # of the thumbnail: never a full-size copy of a big image
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
        warnings.filterwarnings("ignore", "Palette images with Transparency", UserWarning)  # converted as asked
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(body))
        if im.size[0] * im.size[1] > max_pixels:
            raise ImageProblem("bomb", "over the pixel cap")
        return im.convert("RGB")
