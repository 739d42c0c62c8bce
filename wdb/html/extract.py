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
from collections import Counter
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

from .assemble import PARA, _assemble
from .regions import (R_ARTICLE, R_MAINTAG, R_NONE, REGION_NAMES, _REGION_OUT, _element_label,
                      _region_of)
from .urls import looks_like_url, parse_srcset, resolve, srcset_weight, url_in_json

MEDIA_SELECTOR = "img, audio, video, source, track, iframe, embed, object, a[href]"
BLOCK_TAGS = (
    "p|div|br|li|h[1-6]|tr|td|th|section|article|header|footer|nav|aside|blockquote|pre|dl|dt|dd|"
    "table|ul|ol|form|figure|figcaption|main|hr|address|caption|details|summary|option"
)
# a newline text node before every block element, inserted in the source (C-level regex): the
# same effect as inserting DOM nodes, without a Python call per element
# (the leading character class is a cheap first test before the alternation)
_BLOCK = re.compile(r"<(?=[PpDdBbLlHhTtSsAaFfMmUuOoCc])(?=(?:" + BLOCK_TAGS + r")[\s/>])", re.IGNORECASE)
# paragraphs, headings, lists, tables, figures and <hr> are set off by a blank line: a private-use
# character on a line of its own before their start tags and after their end tags (after, so that
# it is never foster-parented out of a table)
PARA_TAGS = "p|h[1-6]|ul|ol|dl|blockquote|pre|table|figure|hr"
_PARA_START = re.compile(r"<(?=[PpHhUuOoDdBbTtFf])(?=(?:" + PARA_TAGS + r")[\s/>])", re.IGNORECASE)
_PARA_END = re.compile(r"(</(?:" + PARA_TAGS + r")(?=[\s/>])[^>]*>)", re.IGNORECASE)
_MARKERS = re.compile("[\ue000-\ue004]")  # the lexbor scan's in-band markers, blanked in its input
# elements the native scanner never holds open (void, raw text): their content has no region of its own
_NO_REGION = frozenset("area base br col embed hr img input link meta source track wbr param keygen basefont bgsound "
                       "frame script style title textarea xmp iframe noembed noframes plaintext template".split())
# a block's end tag ends its line too ("<div>a</div>b" is two lines)
_BLOCK_END = re.compile(r"(</(?=[PpDdBbLlHhTtSsAaFfMmUuOoCc])(?:" + BLOCK_TAGS + r")(?=[\s/>])[^>]*>)", re.IGNORECASE)
STRIP_TAGS = ["script", "style", "noscript", "template", "head"]
LAZY_ATTRS = (
    "data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src",
    "data-full-src", "data-orig-file", "data-large-file", "data-echo", "data-image", "data-fallback-src",
)
_LAZY = frozenset(LAZY_ATTRS)
LAZY_SRCSET = ("srcset", "data-srcset", "data-lazy-srcset")
_LAZY_SRCSET = frozenset(LAZY_SRCSET)
EXT_KIND = {}
for _e in "jpg jpeg png gif webp avif bmp tif tiff svg jfif heic".split():
    EXT_KIND[_e] = "image"
for _e in "mp3 ogg oga wav flac m4a aac opus wma mid midi ra ram aif aiff".split():
    EXT_KIND[_e] = "audio"
for _e in "mp4 webm mov avi mkv m4v flv ogv wmv mpg mpeg 3gp".split():
    EXT_KIND[_e] = "video"
_EXT = re.compile(r"\.([a-z0-9]{2,5})(?:[?#]|$)")
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
    region: str | None = None  # main | header | nav | footer | aside | form | menu | unknown (None: og:image)
    placeholder: int = 0  # 1: placeholder src replaced by a real candidate; 2: only a placeholder
    render_width: int | None = None  # inline CSS px, else the width/height attributes
    render_height: int | None = None


@dataclass
class Page:
    title: str | None
    lang: str | None
    text: str
    items: list[Item]
    skipped_urls: int  # non-http(s) or broken URLs seen on media elements
    text_capped: bool = False
    regions: list[tuple[int, str]] = field(default_factory=list)  # (start, region) of each run of the text


_LEADING_INT = re.compile(r"\s*(\d{1,6})")
_CSS_WIDTH = re.compile(r"(?<![-\w])width\s*:\s*(\d{1,6}(?:\.\d+)?)px", re.IGNORECASE)
_CSS_HEIGHT = re.compile(r"(?<![-\w])height\s*:\s*(\d{1,6}(?:\.\d+)?)px", re.IGNORECASE)
# a spacer by its file name: a placeholder word, or a one-word .gif/.png such as grey.gif or t.gif
_PLACEHOLDER_NAME = re.compile(
    r"(?:^|[^a-z])(?:spacer|blank|pixel|transparent|placeholder|lazy|lazyload|loading|loader|spinner|1x1)(?:[^a-z]|$)"
    r"|^(?:grey|gray|clear|cleardot|dot|trans|px|empty|s|t|x|b)\.(?:gif|png)$")
_PLACEHOLDER_WORDS = ("spacer", "blank", "pixel", "transparent", "placeholder", "lazy", "loading", "loader", "spinner",
                      "1x1", ".gif", ".png")  # a cheap test before the expression


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

    Returns (text, capped, title, lang, xml_lang, meta_lang, base, elements, figures, og, has_main)
    as wdb/html/_scan.c documents it.
    """
    if _MARKERS.search(html):
        html = _MARKERS.sub(" ", html)
    html = _BLOCK_END.sub("\\1\n", _BLOCK.sub("\n<", html))
    html = _PARA_END.sub("\\1\n\ue002\n", _PARA_START.sub("\n\ue002\n<", html))
    tree = LexborHTMLParser(html)
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
    memo: dict[int, int] = {}  # element -> region
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
        figures.append((figure_of(fig), cap.text().replace(PARA, "") if cap is not None else None))
    # region markers: where an element's region differs from its parent's, at its start and after it
    body_node = tree.body
    if body_node is not None:
        for node in body_node.css("[class], [id], [role], header, footer, nav, aside, form, main, article, menu"):
            if node.tag in _NO_REGION:
                continue
            r = _region_of(node, memo)
            p = _region_of(node.parent, memo) if node.parent is not None else R_NONE
            if r != p:
                first = node.child
                if first is not None:
                    first.insert_before(f"\ue003{r}\ue004")
                else:
                    node.insert_child(f"\ue003{r}\ue004")
                node.insert_after(f"\ue003{p}\ue004")

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
        region = _region_of(parent, memo) if parent is not None else R_NONE
        elements.append([tag, {key: (v if v is not None else "") for key, v in a.items()}, None,
                         index.get(parent.mem_id, -1) if parent is not None else -1, figure_of(node),
                         REGION_NAMES[region] or None])
        if tag in MARKED:
            node.insert_before(f"\ue000{k}\ue001")
    og = [n.attributes.get("content") for n in tree.css(OG_SELECTOR)]
    has_main = any(_region_of(n, memo) == R_ARTICLE for n in tree.css("main, article, [role]")
                   if _element_label(n.tag, n.attributes) in (R_ARTICLE, R_MAINTAG))
    tree.strip_tags(STRIP_TAGS)
    body = tree.body
    raw_text = body.text(separator="") if body is not None else ""
    text, positions, capped, regions = _assemble(raw_text, max_text_chars)
    for k, pos in positions.items():
        elements[k][2] = pos
    return (text, capped, title, lang, xml_lang, meta_lang, base, [tuple(e) for e in elements], figures, og,
            has_main, [(pos, REGION_NAMES[r] or None) for pos, r in regions])


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


def _css_px(style: str | None, prop: str) -> int | None:
    if not style or prop not in style or "px" not in style:
        return None
    m = (_CSS_WIDTH if prop == "width" else _CSS_HEIGHT).search(style)
    return min(int(float(m.group(1))), 999_999) if m else None


def _is_placeholder_src(raw: str, url: str | None) -> bool:
    """A data: URI, or a spacer/blank/1x1/loading image by its file name (a 1x1 box is tested apart)."""
    if raw.lstrip()[:5].lower() == "data:":
        return True
    if url:
        name = url.rsplit("/", 1)[-1].split("?", 1)[0].lower()
        if any(w in name for w in _PLACEHOLDER_WORDS) and _PLACEHOLDER_NAME.search(name):
            return True
    return False


def extract(html: str, url: str, max_text_chars: int = 2_000_000, scanner: str | None = None) -> Page:
    """Parse one page; return text with media positions, and the media items."""
    scan = SCANNERS[scanner] if scanner else (scan_native or scan_lexbor)
    (text, capped, title, lang, xml_lang, meta_lang, base_href, elements, figures, og,
     has_main, text_regions) = scan(html, max_text_chars)
    lang = _clean(lang or xml_lang) or _clean(meta_lang)
    base = url
    if base_href is not None:
        base = resolve(url, base_href) or url
    unlabelled = "unknown" if has_main else "main"
    regions: list[tuple[int, str]] = []  # (start in text, region) of each run of the text
    for start, region in text_regions:
        name = _REGION_OUT[region] if region else unlabelled
        if not regions or regions[-1][1] != name:
            regions.append((start, name))

    items: list[Item] = []
    skipped = 0
    resolved: dict[str, str | None] = {}  # a quarter of a page's URL attributes repeat (src in srcset)

    def add_url(item: Item, attr: str, raw: str | None, desc: str | None = None,
                target: str | None = None) -> str | None:
        nonlocal skipped
        if raw is None or not raw.strip():
            return None
        key = raw if target is None else target
        res = resolved.get(key, "")
        if res == "":
            res = resolved[key] = resolve(base, key)
        if res is None:
            skipped += 1
        item.urls.append((attr, raw[:2048], res, desc))
        return res

    def lazy_url(item: Item, attr: str, raw: str, kind: str | None, known: bool) -> str | None:
        """A lazy-loading attribute's URL: its value when it looks like one, or the first URL of a
        JSON value; a generic data-* attribute must say src or name a media file of the item's kind."""
        nonlocal skipped
        if not known and "src" not in attr and ("/" not in raw or "." not in raw):
            return None  # data-id="12", data-width="300px": no path, no file
        v = raw.strip()
        if v[:1] in ("{", "["):
            found = url_in_json(v)
            if found is None:
                skipped += 1
                return None
            return add_url(item, attr, raw, None, found)
        ext = _ext_kind(v)
        if not looks_like_url(v, spaces=known and ext is not None):
            if known:
                skipped += 1
            return None
        if not known and "src" not in attr and (ext != kind or "/" not in v):
            return None
        return add_url(item, attr, raw)

    def srcset_best(item: Item, attr: str, value: str, best, best_w):
        for cand, desc in parse_srcset(value):  # templates resolve to None (counted as skipped)
            res = add_url(item, attr, cand, desc)
            w = srcset_weight(desc)
            if res and w > best_w:
                best, best_w = res, w
        return best, best_w

    def caption(fig: int) -> str | None:
        found = None  # the outermost figure with a caption wins
        while fig >= 0:
            parent, cap = figures[fig]
            cap = _clean(cap)
            if cap:
                found = cap
            fig = parent
        return found

    # a src shared by several <img> whose alts differ, or that carry another candidate, is a placeholder
    shared_src = set()
    counts = Counter([e[1].get("src") for e in elements if e[0] == "img"])
    if len(counts) < sum(counts.values()):
        shared: dict[str, list] = {}
        for e in elements:
            a = e[1]
            src = a.get("src") if e[0] == "img" else None
            if src and counts[src] >= 2:
                got = shared.setdefault(src, [0, set(), 0])
                got[0] += 1
                if a.get("alt"):
                    got[1].add(a["alt"])
                if len(a) > 2 and any(v != src and (k in _LAZY or (k[:5] == "data-" and "src" in k))
                                      for k, v in a.items()):
                    got[2] += 1
        shared_src = {k for k, (n, alts, other) in shared.items() if (n >= 3 and len(alts) >= 2) or other >= 2}
    placeholder_name: dict[str, bool] = {}

    by_elem: dict[int, Item] = {}
    picture_sources: dict[int, list[tuple[str, str, str | None]]] = {}
    for k, (tag, a, pos, parent, fig, region) in enumerate(elements):
        if tag == "picture":
            continue
        ptag = elements[parent][0] if parent >= 0 else None
        if tag in ("source", "track"):
            if ptag == "picture":
                attr = "srcset" if a.get("srcset") else "data-srcset" if a.get("data-srcset") else "src"
                value = a.get(attr) or ""
                if not value and tag == "source":
                    for key, v in a.items():
                        if key.startswith("data-") and v and ("srcset" in key or looks_like_url(v)) \
                                and ("src" in key or _ext_kind(v) == "image"):
                            value = v
                            break
                picture_sources.setdefault(parent, []).append((value, a.get("type")))
            elif ptag in ("video", "audio") and parent in by_elem:
                owner = by_elem[parent]
                if a.get("src"):
                    add_url(owner, tag, a["src"])
                else:
                    for key, v in a.items():
                        if key.startswith("data-") and v and lazy_url(owner, tag, v, owner.kind, key == "data-src"):
                            break
            continue
        reg = _REGION_OUT[region] if region else unlabelled
        if tag == "a":
            href = a.get("href")
            kind = _ext_kind(href)
            if kind is None:
                continue
            item = Item(len(items), kind, "a", None, pos, title=_clean(a.get("title")), region=reg)
            item.url = add_url(item, "href", href)
            if item.url is None:
                continue
        else:
            w_attr, h_attr = _int(a.get("width")), _int(a.get("height"))
            style = a.get("style")
            rw = rh = None
            if style and "px" in style:
                rw, rh = _css_px(style, "width"), _css_px(style, "height")
            item = Item(len(items), TAG_KIND[tag], tag, None, pos,
                        alt=_clean(a.get("alt")) if tag == "img" else None,
                        title=_clean(a.get("title")),
                        figcaption=caption(fig) if fig >= 0 else None,
                        width=w_attr, height=h_attr, region=reg,
                        render_width=rw if rw is not None else w_attr,
                        render_height=rh if rh is not None else h_attr)
            if tag == "img":
                first = generic = None
                if not _LAZY.isdisjoint(a):
                    for attr in LAZY_ATTRS:
                        if attr in a:
                            got = lazy_url(item, attr, a[attr], "image", True)
                            first = first or got
                data_srcsets = None
                if len(a) > 1:
                    for attr, v in a.items():
                        if attr[:5] == "data-" and v and attr not in _LAZY and attr not in _LAZY_SRCSET:
                            if "srcset" in attr:  # below, with the srcsets
                                data_srcsets = (data_srcsets or []) + [(attr, v)]
                                continue
                            got = lazy_url(item, attr, v, "image", False)
                            generic = generic or got
                raw_src = a.get("src")
                src = add_url(item, "src", raw_src)
                best, best_w = None, -1.0
                for attr in LAZY_SRCSET:
                    if attr in a:
                        best, best_w = srcset_best(item, attr, a[attr], best, best_w)
                if data_srcsets:
                    for attr, v in data_srcsets:
                        best, best_w = srcset_best(item, attr, v, best, best_w)
                if ptag == "picture":
                    for srcset, _type in picture_sources.pop(parent, []):
                        best, best_w = srcset_best(item, "picture>source", srcset, best, best_w)
                placeholder = False
                if raw_src:
                    rw, rh = item.render_width, item.render_height
                    placeholder = raw_src in shared_src or (rw is not None and rh is not None and rw <= 1 and rh <= 1)
                    if not placeholder:
                        placeholder = placeholder_name.get(raw_src)
                        if placeholder is None:
                            placeholder = placeholder_name[raw_src] = _is_placeholder_src(raw_src, src)
                if placeholder:
                    item.url = first or generic or best or src
                    if item.url and item.url != src:
                        item.placeholder = 1
                    elif src and any(u == src for attr, _, u, _ in item.urls if attr != "src"):
                        item.placeholder = 0  # another attribute names the same image: it is real
                    else:
                        item.placeholder = 2
                else:
                    item.url = first or src or best or generic
                if item.placeholder == 2:  # the placeholder itself: no alt, title or caption for it
                    item.alt = item.title = item.figcaption = None
            elif tag in ("audio", "video"):
                item.url = add_url(item, "src", a.get("src"))
                if item.url is None and len(a) > 1:
                    for attr, v in a.items():
                        if attr.startswith("data-") and v and "poster" not in attr:
                            item.url = lazy_url(item, attr, v, TAG_KIND[tag], attr == "data-src")
                            if item.url:
                                break
                if tag == "video":
                    add_url(item, "poster", a.get("poster") or a.get("data-poster"))
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
    return Page(_clean(title), lang, text, items, skipped, capped, regions)

