"""The input side of `wdb score`: read an image's bytes (sha256 checked), decode it at reduced size,
apply open_clip's own geometry (resize, center crop), and hand over uint8 tensors; texts are
tokenised in the same worker processes, once per distinct text of a batch. Normalisation (the
float conversion, mean and std) happens on the model's device, in one op per batch.

A model's preprocessing is split, not rewritten: `split_preprocess` takes open_clip's own
`preprocess` Compose and keeps every step before the tensor conversion (Resize, CenterCrop, mode),
and the mean/std of its Normalize step. With decode="full" the result equals open_clip's
`preprocess` exactly (same PIL ops; the same float ops, batched). With decode="draft" a JPEG is
decoded by libjpeg-turbo at 1/2, 1/4 or 1/8 scale, never below the size the model's resize needs
(simplejpeg, straight into a numpy array; without simplejpeg, PIL's draft), and resized + cropped
as a uint8 tensor; the score then differs slightly from a full-size decode.
decode="device" sends the JPEG bytes themselves and decodes a batch with torchvision's batched
`decode_jpeg` on the model's device (resize and crop as tensors there); anything else (PNG, GIF,
a JPEG that fails there) is decoded in the worker as with "draft".
"""
from __future__ import annotations

import functools
import io
import os
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass

DECODES = ("auto", "draft", "full", "device")


class Undecodable(Exception):
    pass


@dataclass(frozen=True)
class Geometry:
    """The PIL part of a model's preprocess (everything before ToTensor), and what the device part needs."""

    steps: object          # a torchvision Compose of PIL steps
    key: str               # repr of the steps: models with the same key share decoded pixels
    shortest: int          # the shorter side the resize makes (draft never decodes below it)
    crop: tuple[int, int]  # (h, w) of the output
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bicubic"
    simple: bool = True    # plain resize-shortest + center crop (what decode="device" reproduces as tensors)


def split_preprocess(preprocess, preprocess_cfg: dict | None = None) -> Geometry:
    """Geometry from open_clip's `preprocess` Compose: steps before MaybeToTensor/ToTensor, mean/std
    from its Normalize."""
    from torchvision import transforms as T

    steps, mean, std = [], None, None
    after = False
    for t in preprocess.transforms:
        name = type(t).__name__
        if name in ("MaybeToTensor", "ToTensor"):
            after = True
        elif isinstance(t, T.Normalize):
            mean, std = tuple(float(x) for x in t.mean), tuple(float(x) for x in t.std)
        elif not after:
            steps.append(t)
        else:
            raise ValueError(f"cannot split preprocess: {name} after the tensor conversion")
    if mean is None:
        raise ValueError("preprocess has no Normalize step")
    shortest, crop, simple = 0, None, True
    interp = "bicubic"
    for t in steps:
        name = type(t).__name__
        if isinstance(t, T.Resize):
            size = t.size if isinstance(t.size, int) else (t.size[0] if len(t.size) == 1 else None)
            if size is None:  # resize to a fixed (h, w): both sides
                shortest, simple = max(t.size), False
            else:
                shortest = size
            interp = t.interpolation.value
        elif isinstance(t, T.CenterCrop):
            crop = tuple(t.size)
        elif name == "MaybeConvertMode":
            pass
        else:  # ResizeKeepRatio, CenterCropOrPad, ...: keep them in PIL, only decode="device" is off
            simple = False
            shortest = max(shortest, max(getattr(t, "size", (0,)) if not isinstance(getattr(t, "size", 0), int)
                                         else (t.size,)))
    if crop is None:
        cfg_size = (preprocess_cfg or {}).get("size", shortest)
        crop = (cfg_size, cfg_size) if isinstance(cfg_size, int) else tuple(cfg_size)
        simple = False
    simple = simple and interp in ("bicubic", "bilinear")
    return Geometry(T.Compose(steps), repr(steps), shortest or max(crop), crop, mean, std, interp, simple)


def open_image(body: bytes, max_pixels: int):
    """PIL image opened lazily (header only), with wdb's pixel cap and bomb warnings as errors."""
    from PIL import Image

    from ..fetch.probe import ImageProblem

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(body))
    if im.size[0] * im.size[1] > max_pixels:
        raise ImageProblem("bomb", "over the pixel cap")
    return im


def decode_rgb_reduced(body: bytes, shortest: int, max_pixels: int, reduced: bool = True):
    """RGB PIL image of the first frame. reduced: a JPEG is decoded at the smallest DCT scale
    (1/2, 1/4, 1/8) whose both sides stay >= `shortest` (Image.draft), so the later resize to
    `shortest` still only shrinks."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = open_image(body, max_pixels)
        if reduced and im.format == "JPEG" and shortest > 0:
            im.draft("RGB", (shortest, shortest))
        im.load()
        return im if im.mode == "RGB" else im.convert("RGB")  # convert() of an RGB image is a copy


def to_uint8_chw(im):
    import numpy as np
    import torch

    a = np.array(im, dtype=np.uint8)  # a writable copy
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return torch.from_numpy(a).permute(2, 0, 1)


@functools.cache
def simplejpeg():
    """libjpeg-turbo's own scaled decode into a numpy array (no PIL image, no copy out of it); None
    where the package is missing (PIL's draft decodes instead). Imported on first use: it imports
    numpy, which no `wdb` command loads at start."""
    try:
        import simplejpeg as sj
    except ImportError:
        return None
    return sj


def jpeg_chw_reduced(body: bytes, shortest: int, max_pixels: int):
    """uint8 CHW tensor (a view of HWC memory: torchvision's fast resize path) of a JPEG decoded by
    libjpeg-turbo at the smallest of 1/2, 1/4, 1/8 whose short side stays >= `shortest` (the scales
    PIL's draft has), else in full; None where simplejpeg is missing or refuses it (CMYK, a
    recoverable error, ...): the caller decodes it in PIL, which gives the definitive result or
    error. The pixel cap is checked from the header first.

    Measured on COCO (one thread): the full decode equals PIL's (0.004 of 255 after the same
    geometry) and costs ~0.5 ms less than PIL's decode + copy out of the PIL image. libjpeg-turbo's
    other M/8 scales were tried and are not used: 5/8 (a 427 px short side -> 267) was slower
    than the full decode (plain-C IDCT) and 3.5/255 off; 1/2 with a 213 px short side upsampled to
    224 saved 0.12 ms (6 %) at 5.0/255."""
    import torch

    from ..fetch.probe import ImageProblem

    sj = simplejpeg()
    if sj is None:
        return None
    try:
        h, w, cs, _ = sj.decode_jpeg_header(body)
    except ValueError:
        return None
    if h * w > max_pixels:
        raise ImageProblem("bomb", "over the pixel cap")
    if cs not in ("YCbCr", "Gray"):  # CMYK / YCCK: PIL's conversion, as open_clip's
        return None
    k = next((k for k in (8, 4, 2) if shortest > 0 and min(h, w) // k >= shortest), 1)
    try:  # exactly 1/k: no M/8 scale lies between 1/k and its output size
        a = sj.decode_jpeg(body, colorspace="RGB", min_height=-(-h // k), min_width=-(-w // k))
    except ValueError:
        return None
    return torch.from_numpy(a).permute(2, 0, 1)


def pil_pixels(body: bytes, geoms: list[Geometry], max_pixels: int, reduced: bool) -> list:
    """One uint8 CHW tensor per geometry, from one decode (at the largest size any of them needs).
    reduced=False: open_clip's own PIL steps on the full-size decode (exact). reduced=True: the
    JPEG decoded at a smaller DCT scale (jpeg_chw_reduced, else PIL's draft), and resize + crop done
    on the uint8 tensor (torchvision's antialiased bicubic, which agrees with PIL's to ~0.003 of 255
    on average: measured on COCO), about 4x cheaper than PIL's resize of the full image."""
    shortest = max(g.shortest for g in geoms)
    if reduced and all(g.simple for g in geoms) and is_jpeg(body):
        chw = jpeg_chw_reduced(body, shortest, max_pixels)
        if chw is not None:
            return [device_geometry(chw, g) for g in geoms]
    im = decode_rgb_reduced(body, shortest, max_pixels, reduced)
    if not reduced:
        return [to_uint8_chw(g.steps(im)) for g in geoms]
    chw = None
    out = []
    for g in geoms:
        if g.simple:
            chw = to_uint8_chw(im) if chw is None else chw
            out.append(device_geometry(chw, g))  # a view: the batch's torch.stack makes the one copy
        else:
            out.append(to_uint8_chw(g.steps(im)))
    return out


_WARC_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*\r\n", re.I)
_CODED = re.compile(rb"\r\n(?:transfer|content)-encoding:", re.I)


class PointerReader:
    """Reads image bytes through their pointers for one process, with each archive file kept open
    (a bounded set of descriptors, reopened after a fork) and one `pread` of the member's bytes.

    The fast path covers the common record: a local file, a known length, no inner offset, a WARC
    record (gzip member or plain) whose HTTP response carries neither Transfer- nor
    Content-Encoding (or a record whose block is the payload). The bytes it returns must match the
    recorded sha256, so a wrong parse can never pass; anything else, and every mismatch, goes
    through `read_verified`, which gives the definitive bytes or error."""

    MAX_FILES = 32

    def __init__(self, cap: int | None = None):
        from ..warc.payload import MAX_SERVE_BYTES

        self.cap = cap or MAX_SERVE_BYTES
        self.pid, self.files = None, {}
        self.fast = self.slow = 0

    def _fd(self, path: str) -> int:
        if self.pid != os.getpid():  # a forked worker: its own descriptors
            self.pid, self.files = os.getpid(), {}
        fd = self.files.get(path)
        if fd is None:
            if len(self.files) >= self.MAX_FILES:
                os.close(self.files.pop(next(iter(self.files))))
            fd = self.files[path] = os.open(path, os.O_RDONLY)
        return fd

    def _fast(self, loc: str, off: int, length: int) -> bytes | None:
        from ..warc.inflate import zlib

        raw = os.pread(self._fd(loc), length, off)
        if raw[:2] == b"\x1f\x8b":
            d = zlib.decompressobj(31)
            data = d.decompress(raw, self.cap + (1 << 17))
        else:
            data = raw
        if not data.startswith(b"WARC/"):
            return None
        hend = data.find(b"\r\n\r\n", 0, 1 << 16)
        m = _WARC_LENGTH.search(data, 0, hend + 2) if hend > 0 else None
        if m is None:
            return None
        start = hend + 4  # the block is data[start:stop]; only the body is copied out
        stop = start + int(m.group(1))
        if len(data) < stop:
            return None
        if not data.startswith(b"HTTP/", start):
            return data[start:stop] if stop - start <= self.cap else None
        end = data.find(b"\r\n\r\n", start, min(stop, start + (1 << 16)))
        if end < 0 or _CODED.search(data, start, end + 2):
            return None
        return data[end + 4:stop] if stop - end - 4 <= self.cap else None

    def read(self, loc: str, off: int, length: int | None, inner: int, sha256: str | None) -> bytes:
        import hashlib

        from ..warc.inflate import zlib
        from ..warc.payload import is_url, read_verified

        if length and not inner and sha256 and not is_url(loc):
            try:
                body = self._fast(loc, off, length)
            except (OSError, ValueError, zlib.error):
                body = None
            if body is not None and hashlib.sha256(body).hexdigest() == sha256:
                self.fast += 1
                return body
        self.slow += 1
        return read_verified(loc, off, length, inner, sha256, self.cap)


def is_jpeg(body: bytes) -> bool:
    return body[:3] == b"\xff\xd8\xff"


def normalize(pixels, g: Geometry, device):
    """uint8 NCHW batch -> float32 normalised on `device`: the same float ops as open_clip's
    ToTensor + Normalize (x / 255, then (x - mean) / std), batched."""
    import torch

    # contiguous NCHW float whatever the layout the workers sent (NHWC memory: see stack_hwc)
    x = pixels.to(device, non_blocking=True).to(torch.float32, memory_format=torch.contiguous_format).div(255)
    key = (g.mean, g.std, str(device))
    if key not in _MEAN_STD:  # made once per device, not copied to it every batch
        _MEAN_STD[key] = tuple(torch.as_tensor(v, dtype=torch.float32, device=device)[None, :, None, None]
                               for v in (g.mean, g.std))
    mean, std = _MEAN_STD[key]
    return x.sub_(mean).div_(std)


_MEAN_STD: dict = {}


def device_geometry(img, g: Geometry):
    """A decoded uint8 CHW tensor (on any device) resized shortest-side + center-cropped as tensors."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    mode = InterpolationMode.BICUBIC if g.interpolation == "bicubic" else InterpolationMode.BILINEAR
    img = F.resize(img, [g.shortest], interpolation=mode, antialias=True)
    return F.center_crop(img, list(g.crop))


def decode_jpegs_on(device, raw: list, geoms: list[Geometry]) -> list:
    """Batched torchvision decode_jpeg on `device` (a list of uint8 byte tensors); per image a list
    of tensors (one per geometry), or None where that image failed (the caller decodes it in PIL)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)  # torchvision 0.29 -> TorchCodec
    try:
        imgs = decode_jpeg([r.to(device) if device.type == "cpu" else r for r in raw],
                           mode=ImageReadMode.RGB, device=device)
    except (RuntimeError, ValueError):
        imgs = []
        for r in raw:  # one bad JPEG fails the batch: decode one by one to find it
            try:
                imgs.append(decode_jpeg(r, mode=ImageReadMode.RGB, device=device))
            except (RuntimeError, ValueError):
                imgs.append(None)
    return [None if im is None else [device_geometry(im, g) for g in geoms] for im in imgs]


class Images:
    """torch Dataset over image pointers (read with sha256 check, decoded, geometry applied), run in
    DataLoader workers. Item: (index, pixels | raw JPEG | None, status, error); pixels is one uint8
    tensor per geometry; raw is a uint8 tensor of the JPEG bytes (decode="device")."""

    def __init__(self, items, geoms: list[Geometry], decode: str = "draft", max_pixels: int | None = None):
        from ..fetch.probe import MAX_PIXELS

        self.items, self.geoms, self.decode = items, geoms, decode
        self.max_pixels = max_pixels or MAX_PIXELS
        self.reader = PointerReader()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import torch

        from ..errors import PointerMismatch

        key, loc, off, length, inner, sha = self.items[i][:6]
        try:
            body = self.reader.read(loc, off, length, inner, sha)
        except PointerMismatch as e:
            return i, None, "sha256_mismatch", str(e)
        except (OSError, ValueError) as e:
            return i, None, "unreadable", f"{type(e).__name__}: {e}"
        try:
            if self.decode == "device" and is_jpeg(body):
                open_image(body, self.max_pixels)  # the pixel cap from the header, before any device work
                return i, ("raw", torch.frombuffer(bytearray(body), dtype=torch.uint8)), "ok", None
            return i, ("pixels", pil_pixels(body, self.geoms, self.max_pixels, self.decode != "full")), "ok", None
        except Exception as e:  # noqa: BLE001 -- any decoder failure is this image's status, not the run's
            return i, None, "undecodable", f"{type(e).__name__}: {e}"


def stack_hwc(pix: list):
    """N uint8 (3, H, W) tensors whose memory is HWC (what the decoders and torchvision's resize
    give) -> one (N, 3, H, W) batch whose memory is NHWC: each image's rows copied as they lie, no
    transpose (the device makes the batch contiguous with its float conversion). Inside a DataLoader
    worker the batch is allocated in shared memory, as torch's default_collate does, so that sending
    it to the main process copies nothing more."""
    import torch
    from torch.utils.data import get_worker_info

    c, h, w = pix[0].shape
    rows = [p.permute(1, 2, 0) for p in pix]
    if get_worker_info() is None:
        return torch.stack(rows).permute(0, 3, 1, 2)
    storage = pix[0]._typed_storage()._new_shared(len(pix) * h * w * c)
    out = pix[0].new(storage).resize_(len(pix), h, w, c)
    return torch.stack(rows, out=out).permute(0, 3, 1, 2)


class Collate:
    """Batch in the worker: uint8 stacks per geometry (raw JPEGs kept apart for the device decode),
    and the batch's distinct texts tokenised once per distinct tokenizer."""

    CACHE = 16384  # token rows kept per tokenizer and process (77 int64 each: 10 MiB at most)

    def __init__(self, texts_of: list[list[str]], tokenizers: list):
        self.texts_of, self.tokenizers = texts_of, tokenizers  # texts_of[i]: item i's texts (picklable)
        self.cache: list[OrderedDict] = [OrderedDict() for _ in tokenizers]

    def _tokens(self, k: int, tok, texts: list[str]):
        """tok(texts), each distinct text tokenised once while the bounded cache holds it (the same
        alt recurs on many images; open_clip's tokenizer costs ~0.3 ms a text)."""
        import torch

        cache = self.cache[k]
        new = [t for t in texts if t not in cache]
        fresh = {t: row.clone() for t, row in zip(new, tok(new), strict=True)} if new else {}
        rows = []
        for t in texts:
            if t in fresh:
                rows.append(fresh[t])
            else:
                cache.move_to_end(t)
                rows.append(cache[t])
        for t, row in fresh.items():
            cache[t] = row
            if len(cache) > self.CACHE:
                cache.popitem(last=False)
        return torch.stack(rows)

    def __call__(self, batch):
        ok = [(i, p) for i, p, _, _ in batch if p is not None]
        failed = [(i, st, err) for i, p, st, err in batch if p is None]
        idx = [i for i, _ in ok]
        pix = [p for kind, p in (x for _, x in ok) if kind == "pixels"]
        pix_rows = [r for r, (_, (kind, _)) in enumerate(ok) if kind == "pixels"]
        raw = [p for kind, p in (x for _, x in ok) if kind == "raw"]
        raw_rows = [r for r, (_, (kind, _)) in enumerate(ok) if kind == "raw"]
        stacks = [stack_hwc([p[g] for p in pix]) for g in range(len(pix[0]))] if pix else None
        texts: list[str] = []
        seen: dict[str, int] = {}
        for i in idx:
            for t in self.texts_of[i]:
                if t not in seen:
                    seen[t] = len(texts)
                    texts.append(t)
        tokens = [self._tokens(k, tok, texts) if texts else None for k, tok in enumerate(self.tokenizers)]
        return {"idx": idx, "failed": failed, "stacks": stacks, "pix_rows": pix_rows, "raw": raw,
                "raw_rows": raw_rows, "texts": texts, "text_index": seen, "tokens": tokens}
