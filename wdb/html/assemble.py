"""The lexbor path's text assembly: white space folded to the strongest break between two pieces
(space, newline, paragraph), media markers turned into positions, region changes recorded."""
from __future__ import annotations

import re

from .regions import R_NONE

PARA = "\ue002"
_PARA_RUN = re.compile("\n?(?:\ue002\n?)+")
_ALL_MARKS = re.compile("\ue000(\\d+)\ue001|\ue003(\\d+)\ue004")

_LEVEL_SEP = ("", " ", "\n", "\n\n")
_WS = " \n" + PARA


def _level(ws: str) -> int:
    """0 none, 1 space, 2 line break, 3 paragraph break (blank line)."""
    return 3 if PARA in ws else 2 if "\n" in ws else 1 if ws else 0


def _assemble(raw: str, max_chars: int) -> tuple[str, dict[int, int], bool, list[tuple[int, int]]]:
    """Remove markers, normalise white space, and return (text, {seq: position}, capped, regions).

    Runs of white space become one space, or one newline when they hold a line break, or a blank
    line when they hold a paragraph break; an inline item between two words separates them by a
    space. Region markers are zero-width: regions lists (position, region) where the region of the
    written text changes, at its first character.
    """
    # one C-level pass per line collapses white space for the whole text; markers are not space;
    # a paragraph break is PARA on a line of its own, and runs of them become one PARA
    raw = "\n".join(line for line in (" ".join(x.split()) for x in raw.split("\n")) if line)
    if PARA in raw:
        raw = _PARA_RUN.sub(PARA, raw)
    parts = _ALL_MARKS.split(raw)  # text, item, region, text, item, region, ...
    out: list[str] = []
    n = 0
    positions: dict[int, int] = {}
    regions: list[tuple[int, int]] = []
    region = last_region = R_NONE
    pending = 0  # white space seen but not yet written: a _level
    last = ""  # last character written
    capped = False
    for i in range(0, len(parts), 3):
        part = parts[i]
        if part and not capped:
            core = part.strip(_WS)
            if not core:
                pending = max(pending, _level(part))
            else:
                lead = part[: len(part) - len(part.lstrip(_WS))]
                if n and (pending or lead) and not last.isspace():
                    sep = _LEVEL_SEP[max(pending, _level(lead))]
                    out.append(sep)
                    n += len(sep)
                if PARA in core:
                    core = core.replace(PARA, "\n\n")
                if n + len(core) > max_chars:
                    core = core[: max(0, max_chars - n)]
                    capped = True
                if core and (region != last_region or not regions):
                    regions.append((n, region))
                    last_region = region
                out.append(core)
                n += len(core)
                last = core[-1:] or last
                pending = _level(part[len(part.rstrip(_WS)):])
        if i + 1 >= len(parts):
            break
        item, reg = parts[i + 1], parts[i + 2]
        if reg is not None:
            region = int(reg)
            continue
        if not capped and n:
            # the next text, past region markers
            k = i + 3
            while k + 2 < len(parts) and not parts[k] and parts[k + 2] is not None:
                k += 3
            nxt = parts[k][:1] if k < len(parts) else ""
            if not nxt and k + 1 < len(parts) and parts[k + 1] is not None:
                nxt = "\ue000"
            if last.isspace():  # right after another item's separator: no second one
                sep = ""
            else:
                sep = _LEVEL_SEP[pending] or (" " if nxt and nxt not in _WS and nxt != "\ue000" else "")
            if sep:
                out.append(sep)
                n += len(sep)
                last = sep[-1]
            pending = 0
        positions.setdefault(int(item), n)
    text = "".join(out)
    if text[-1:].isspace() and not capped:  # no trailing white space (the separator before items at the very end)
        text = text.rstrip()
        n = len(text)
        positions = {k: min(p, n) for k, p in positions.items()}
    return text, positions, capped, regions
