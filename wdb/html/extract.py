"""Extract visible text and media items, in document order, from one HTML page.

The parser is lexbor (selectolax), an HTML5 parser: no depth limit, no text-node limit, and C-level
selectors and text serialisation.  Instead of walking the DOM in Python, every media element gets a
private-use marker inserted before it and every block element a newline; one C-level text() call
then yields the page text with the markers in place, which gives each item its character position.
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


def _int(v: str | None) -> int | None:
    if not v:
        return None
    m = re.match(r"\s*(\d{1,6})", v)
    return int(m.group(1)) if m else None


def _clean(s: str | None) -> str | None:
    if s is None:
        return None
    s = " ".join(s.split())
    return s or None


def extract(html: str, url: str, max_text_chars: int = 2_000_000) -> Page:
    """Parse one page; return text with media positions, and the media items."""
    if "\ue000" in html or "\ue001" in html:
        html = html.replace("\ue000", " ").replace("\ue001", " ")
    tree = LexborHTMLParser(_BLOCK.sub("\n<", html))
    root = tree.css_first("html")
    lang = None
    if root is not None:
        attrs = root.attributes
        lang = attrs.get("lang") or attrs.get("xml:lang")
    if not lang:
        meta = tree.css_first('meta[http-equiv="content-language" i]')
        if meta is not None:
            lang = meta.attributes.get("content")
    lang = _clean(lang)
    t = tree.css_first("title")
    title = _clean(t.text()) if t is not None else None
    base = url
    b = tree.css_first("base[href]")
    if b is not None:
        base = resolve(url, b.attributes.get("href")) or url

    items: list[Item] = []
    skipped = 0

    def add_url(item: Item, attr: str, raw: str | None, desc: str | None = None) -> str | None:
        nonlocal skipped
        if raw is None or not raw.strip():
            return None
        res = resolve(base, raw)
        if res is None:
            skipped += 1
        item.urls.append((attr, raw[:2048], res, desc))
        return res

    captions: dict[int, str] = {}
    for fig in tree.css("figure"):
        cap = fig.css_first("figcaption")
        if cap is None:
            continue
        text = _clean(cap.text())
        if text:
            for m in fig.css("img, video, audio, iframe, embed, object"):
                captions.setdefault(m.mem_id, text)

    by_node: dict[int, Item] = {}
    picture_sources: dict[int, list[tuple[str, str | None]]] = {}
    markers = 0
    for node in tree.css(MEDIA_SELECTOR):
        tag = node.tag
        a = node.attributes
        if tag in ("source", "track"):
            parent = node.parent
            ptag = parent.tag if parent is not None else None
            if ptag == "picture":
                picture_sources.setdefault(parent.mem_id, []).append(
                    (a.get("srcset") or a.get("data-srcset") or a.get("src") or "", a.get("type")))
            elif ptag in ("video", "audio") and parent.mem_id in by_node:
                add_url(by_node[parent.mem_id], tag, a.get("src") or a.get("data-src"))
            continue
        if tag == "a":
            href = a.get("href")
            if not href:
                continue
            m = _EXT.search(href.lower().split("#", 1)[0])
            kind = EXT_KIND.get(m.group(1)) if m else None
            if kind is None:
                continue
            item = Item(len(items), kind, "a", None, None, title=_clean(a.get("title")))
            item.url = add_url(item, "href", href)
            if item.url is None:
                continue
        else:
            item = Item(len(items), TAG_KIND[tag], tag, None, None,
                        alt=_clean(a.get("alt")) if tag == "img" else None,
                        title=_clean(a.get("title")),
                        figcaption=captions.get(node.mem_id),
                        width=_int(a.get("width")), height=_int(a.get("height")))
            first = None
            if tag == "img":
                for attr in LAZY_ATTRS:
                    if attr in a:
                        first = first or add_url(item, attr, a[attr])
                src = add_url(item, "src", a.get("src"))
                best, best_w = None, -1.0
                for attr in LAZY_SRCSET:
                    for cand, desc in parse_srcset(a.get(attr) or ""):
                        res = add_url(item, attr, cand, desc)
                        w = srcset_weight(desc)
                        if res and w > best_w:
                            best, best_w = res, w
                parent = node.parent
                if parent is not None and parent.tag == "picture":
                    for srcset, _type in picture_sources.pop(parent.mem_id, []):
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
                by_node[node.mem_id] = item
            elif tag == "object":
                item.url = add_url(item, "data", a.get("data"))
            else:
                item.url = add_url(item, "src", a.get("src") or a.get("data-src"))
            if item.url is None and tag in ("audio", "video"):
                by_node[node.mem_id] = item  # <source> children may still give it a URL
            elif item.url is None:
                continue  # no http(s) URL at all: skipped (and counted in add_url)
        node.insert_before(f"\ue000{item.seq}\ue001")
        markers += 1
        items.append(item)

    for og in tree.css('meta[property="og:image"], meta[property="og:image:url"], meta[name="og:image"]'):
        item = Item(len(items), "image", "og:image", None, None)
        item.url = add_url(item, "content", og.attributes.get("content"))
        if item.url:
            items.append(item)

    # video/audio whose URL only came from <source> children; those without any are dropped
    for item in items:
        if item.url is None:
            item.url = next((u for attr, _, u, _ in item.urls if u and attr == "source"), None)

    tree.strip_tags(STRIP_TAGS)
    body = tree.body
    raw_text = body.text(separator="") if body is not None else ""
    text, positions, capped = _assemble(raw_text, max_text_chars)
    for item in items:
        if item.tag != "og:image":
            item.pos = positions.get(item.seq)
    items = [it for it in items if it.url is not None]
    for i, it in enumerate(items):
        it.seq = i
    return Page(title, lang, text, items, skipped, capped)


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
                sep = pending or (" " if last and not last.isspace() and nxt and not nxt.isspace()
                                  and nxt != "\ue000" else "")
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
