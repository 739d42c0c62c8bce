"""Extract visible text and media items, in document order, from one HTML page.

A scan gives the page text (white space collapsed, block elements on their own lines), the media
elements with their attributes and character positions in that text, figure captions and page
facts (title, language, base, og:image).  Two scanners give the same scan: the native one
(wdb/html/_scan.c, one C pass, no DOM) and scan_lexbor() below (lexbor's HTML5 parser, a private-use
marker inserted before each media element and one C-level text() call), the reference the native
scanner is tested against and the fallback where it is not built.  extract() turns a scan into
items: URL resolution, srcset, lazy-loading attributes, captions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

from .urls import parse_srcset, resolve, srcset_weight

MEDIA_SELECTOR = "img, audio, video, source, track, iframe, embed, object, a[href]"
BLOCK_TAGS = (
    "p|div|br|li|h[1-6]|tr|td|th|section|article|header|footer|nav|aside|blockquote|pre|dl|dt|dd|"
    "table|ul|ol|form|figure|figcaption|main|hr|address|caption|details|summary|option"
)
# a newline text node before every block element, inserted in the source (C-level regex): the
# same effect as inserting DOM nodes, without a Python call per element
# (the leading character class is a cheap first test before the alternation)
_BLOCK = re.compile(r"<(?=[PpDdBbLlHhTtSsAaFfMmUuOoCc])(?=(?:" + BLOCK_TAGS + r")[\s/>])", re.IGNORECASE)
STRIP_TAGS = ["script", "style", "noscript", "template", "head"]
LAZY_ATTRS = (
    "data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src",
    "data-full-src", "data-orig-file", "data-large-file", "data-echo", "data-image", "data-fallback-src",
)
_LAZY = frozenset(LAZY_ATTRS)
LAZY_SRCSET = ("srcset", "data-srcset", "data-lazy-srcset")
EXT_KIND = {}
for _e in "jpg jpeg png gif webp avif bmp tif tiff svg jfif heic".split():
    EXT_KIND[_e] = "image"
for _e in "mp3 ogg oga wav flac m4a aac opus wma mid midi ra ram aif aiff".split():
    EXT_KIND[_e] = "audio"
for _e in "mp4 webm mov avi mkv m4v flv ogv wmv mpg mpeg 3gp".split():
    EXT_KIND[_e] = "video"
_EXT = re.compile(r"\.([a-z0-9]{2,5})(?:[?#]|$)")
_MARK = re.compile("\ue000(\\d+)\ue001")
MARKED = ("img", "audio", "video", "iframe", "embed", "object", "a")  # elements with a text position
OG_SELECTOR = 'meta[property="og:image"], meta[property="og:image:url"], meta[name="og:image"]'
TAG_KIND = {"img": "image", "audio": "audio", "video": "video", "iframe": "embed",
            "embed": "embed", "object": "embed"}


@dataclass
class Item:
    seq: int
    kind: str  # image | audio | video | embed
    tag: str
    url: str | None
    pos: int | None  # character offset in the page text (None: not in the flow, e.g. og:image)
    alt: str | None = None
    title: str | None = None
    figcaption: str | None = None
    width: int | None = None
    height: int | None = None
    urls: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    # (attribute, raw value, resolved URL or None, srcset descriptor)


@dataclass
class Page:
    title: str | None
    lang: str | None
    text: str
    items: list[Item]
    skipped_urls: int  # non-http(s) or broken URLs seen on media elements
    text_capped: bool = False


_LEADING_INT = re.compile(r"\s*(\d{1,6})")


def _int(v: str | None) -> int | None:
    if not v:
        return None
    if v.isascii() and v.isdigit() and len(v) <= 6:
        return int(v)
    m = _LEADING_INT.match(v)
    return int(m.group(1)) if m else None


def _clean(s: str | None) -> str | None:
    if s is None:
        return None
    s = " ".join(s.split())
    return s or None


def _ext_kind(href: str | None) -> str | None:
    if not href:
        return None
    m = _EXT.search(href.lower().split("#", 1)[0])
    return EXT_KIND.get(m.group(1)) if m else None


def scan_lexbor(html: str, max_text_chars: int) -> tuple:
    """The scan with lexbor: the reference for the native scanner, and its fallback.

    Returns (text, capped, title, lang, xml_lang, meta_lang, base, elements, figures, og) as
    wdb/html/_scan.c documents it.
    """
    if "\ue000" in html or "\ue001" in html:
        html = html.replace("\ue000", " ").replace("\ue001", " ")
    tree = LexborHTMLParser(_BLOCK.sub("\n<", html))
    root = tree.css_first("html")
    lang = xml_lang = meta_lang = base = title = None
    if root is not None:
        lang, xml_lang = root.attributes.get("lang"), root.attributes.get("xml:lang")
    meta = tree.css_first('meta[http-equiv="content-language" i]')
    if meta is not None:
        meta_lang = meta.attributes.get("content") or ""
    t = tree.css_first("title")
    if t is not None:
        title = t.text()
    b = tree.css_first("base[href]")
    if b is not None:
        base = b.attributes.get("href")

    figures: list[tuple[int, str | None]] = []
    fig_of: dict[int, int] = {}

    def figure_of(node) -> int:
        p = node.parent
        while p is not None:
            if p.tag == "figure":
                return fig_of.get(p.mem_id, -1)
            p = p.parent
        return -1

    for fig in tree.css("figure"):
        cap = fig.css_first("figcaption")
        fig_of[fig.mem_id] = len(figures)
        figures.append((figure_of(fig), cap.text() if cap is not None else None))

    elements: list[list] = []
    index: dict[int, int] = {}
    for node in tree.css(MEDIA_SELECTOR + ", picture"):
        tag = node.tag
        a = node.attributes
        if tag == "a" and _ext_kind(a.get("href")) is None:
            continue
        k = len(elements)
        index[node.mem_id] = k
        parent = node.parent
        elements.append([tag, {key: (v if v is not None else "") for key, v in a.items()}, None,
                         index.get(parent.mem_id, -1) if parent is not None else -1, figure_of(node)])
        if tag in MARKED:
            node.insert_before(f"\ue000{k}\ue001")
    og = [n.attributes.get("content") for n in tree.css(OG_SELECTOR)]
    tree.strip_tags(STRIP_TAGS)
    body = tree.body
    raw_text = body.text(separator="") if body is not None else ""
    text, positions, capped = _assemble(raw_text, max_text_chars)
    for k, pos in positions.items():
        elements[k][2] = pos
    return (text, capped, title, lang, xml_lang, meta_lang, base, [tuple(e) for e in elements], figures, og)


try:
    from html.entities import html5 as _entities

    from . import _scan

    _scan.setup(dict(_entities), dict(EXT_KIND))
    scan_native = _scan.scan
except ImportError:  # not built (no C compiler at install): lexbor, same output, slower
    scan_native = None

SCANNERS = {"lexbor": scan_lexbor}
if scan_native is not None:
    SCANNERS["native"] = scan_native


def extract(html: str, url: str, max_text_chars: int = 2_000_000, scanner: str | None = None) -> Page:
    """Parse one page; return text with media positions, and the media items."""
    scan = SCANNERS[scanner] if scanner else (scan_native or scan_lexbor)
    text, capped, title, lang, xml_lang, meta_lang, base_href, elements, figures, og = scan(html, max_text_chars)
    lang = _clean(lang or xml_lang) or _clean(meta_lang)
    base = url
    if base_href is not None:
        base = resolve(url, base_href) or url

    items: list[Item] = []
    skipped = 0
    resolved: dict[str, str | None] = {}  # a quarter of a page's URL attributes repeat (src in srcset)

    def add_url(item: Item, attr: str, raw: str | None, desc: str | None = None) -> str | None:
        nonlocal skipped
        if raw is None or not raw.strip():
            return None
        res = resolved.get(raw, "")
        if res == "":
            res = resolved[raw] = resolve(base, raw)
        if res is None:
            skipped += 1
        item.urls.append((attr, raw[:2048], res, desc))
        return res

    def caption(fig: int) -> str | None:
        found = None  # the outermost figure with a caption wins
        while fig >= 0:
            parent, cap = figures[fig]
            cap = _clean(cap)
            if cap:
                found = cap
            fig = parent
        return found

    by_elem: dict[int, Item] = {}
    picture_sources: dict[int, list[tuple[str, str | None]]] = {}
    for k, (tag, a, pos, parent, fig) in enumerate(elements):
        if tag == "picture":
            continue
        ptag = elements[parent][0] if parent >= 0 else None
        if tag in ("source", "track"):
            if ptag == "picture":
                picture_sources.setdefault(parent, []).append(
                    (a.get("srcset") or a.get("data-srcset") or a.get("src") or "", a.get("type")))
            elif ptag in ("video", "audio") and parent in by_elem:
                add_url(by_elem[parent], tag, a.get("src") or a.get("data-src"))
            continue
        if tag == "a":
            href = a.get("href")
            kind = _ext_kind(href)
            if kind is None:
                continue
            item = Item(len(items), kind, "a", None, pos, title=_clean(a.get("title")))
            item.url = add_url(item, "href", href)
            if item.url is None:
                continue
        else:
            item = Item(len(items), TAG_KIND[tag], tag, None, pos,
                        alt=_clean(a.get("alt")) if tag == "img" else None,
                        title=_clean(a.get("title")),
                        figcaption=caption(fig) if fig >= 0 else None,
                        width=_int(a.get("width")), height=_int(a.get("height")))
            first = None
            if tag == "img":
                if not _LAZY.isdisjoint(a):
                    for attr in LAZY_ATTRS:
                        if attr in a:
                            first = first or add_url(item, attr, a[attr])
                src = add_url(item, "src", a.get("src"))
                best, best_w = None, -1.0
                for attr in LAZY_SRCSET:
                    if attr not in a:
                        continue
                    for cand, desc in parse_srcset(a[attr]):
                        res = add_url(item, attr, cand, desc)
                        w = srcset_weight(desc)
                        if res and w > best_w:
                            best, best_w = res, w
                if ptag == "picture":
                    for srcset, _type in picture_sources.pop(parent, []):
                        for cand, desc in parse_srcset(srcset):
                            res = add_url(item, "picture>source", cand, desc)
                            w = srcset_weight(desc)
                            if res and w > best_w:
                                best, best_w = res, w
                item.url = first or src or best
            elif tag in ("audio", "video"):
                item.url = add_url(item, "src", a.get("src"))
                if tag == "video":
                    add_url(item, "poster", a.get("poster"))
                by_elem[k] = item
            elif tag == "object":
                item.url = add_url(item, "data", a.get("data"))
            else:
                item.url = add_url(item, "src", a.get("src") or a.get("data-src"))
            if item.url is None and tag not in ("audio", "video"):
                continue  # no http(s) URL at all: skipped (and counted in add_url)
        items.append(item)

    for content in og:
        item = Item(len(items), "image", "og:image", None, None)
        item.url = add_url(item, "content", content)
        if item.url:
            items.append(item)

    # video/audio whose URL only came from <source> children; those without any are dropped
    for item in items:
        if item.url is None:
            item.url = next((u for attr, _, u, _ in item.urls if u and attr == "source"), None)
    items = [it for it in items if it.url is not None]
    for i, it in enumerate(items):
        it.seq = i
    return Page(_clean(title), lang, text, items, skipped, capped)


def _assemble(raw: str, max_chars: int) -> tuple[str, dict[int, int], bool]:
    """Remove markers, normalise white space, and return (text, {seq: position}, capped).

    Runs of white space become one space, or one newline when they hold a line break; an inline
    item between two words separates them by a space.
    """
    # one C-level pass per line collapses white space for the whole text; markers are not space
    raw = "\n".join(line for line in (" ".join(x.split()) for x in raw.split("\n")) if line)
    parts = _MARK.split(raw)
    out: list[str] = []
    n = 0
    positions: dict[int, int] = {}
    pending = ""  # white space seen but not yet written: "", " " or "\n"
    last = ""  # last character written
    capped = False
    for i, part in enumerate(parts):
        if i % 2:
            if not capped and n:
                nxt = parts[i + 1][:1] if i + 1 < len(parts) else ""
                if last.isspace():  # right after another item's separator: no second one
                    sep = ""
                else:
                    sep = pending or (" " if nxt and not nxt.isspace() and nxt != "\ue000" else "")
                if sep:
                    out.append(sep)
                    n += 1
                    last = sep
                pending = ""
            positions.setdefault(int(part), n)
            continue
        if not part or capped:
            continue
        core = part.strip()
        if not core:
            pending = "\n" if "\n" in part or pending == "\n" else " "
            continue
        lead = part[: len(part) - len(part.lstrip())]
        ws = pending + lead
        if n and ws and not last.isspace():
            sep = "\n" if "\n" in ws else " "
            out.append(sep)
            n += 1
        if n + len(core) > max_chars:
            core = core[: max(0, max_chars - n)]
            capped = True
        out.append(core)
        n += len(core)
        last = core[-1:] or last
        trail = part[len(part.rstrip()):]
        pending = "\n" if "\n" in trail else (" " if trail else "")
    return "".join(out), positions, capped
