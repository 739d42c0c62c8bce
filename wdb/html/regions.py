"""Page regions (main | header | nav | footer | aside | form | menu): the same labels as the native
scanner's (wdb/html/_scan.c, "page regions"), for the lexbor path: from the tag, else `role`, else
the words of the class names and id, combined from the outermost ancestor inwards."""
from __future__ import annotations

import re

# The same labels as wdb/html/_scan.c ("page regions"): from the tag, else role, else the words of
# the class names and id; combined from the outermost ancestor inwards.
R_NONE, R_MAIN, R_ARTICLE, R_HEADER, R_NAV, R_FOOTER, R_ASIDE, R_FORM, R_MENU = range(9)
R_MAINTAG = 15  # <main>, role=main: a label only (the region inside is R_ARTICLE, whatever encloses it)
REGION_NAMES = ("", "main", "article", "header", "nav", "footer", "aside", "form", "menu")
_RANK = (99, 7, 7, 6, 2, 5, 4, 3, 1)
_PREFIX, _STATE = 16, 32
_KEYWORDS = {}
for _label, _words in (
        (R_MENU, "menu menus menubar megamenu mainmenu submenu menuitem dropdown"),
        (R_NAV, "nav navbar navigation topnav mainnav sitenav subnav breadcrumb breadcrumbs pagination pager"),
        (R_FORM, "form search searchform searchbox login newsletter subscribe signup"),
        (R_ASIDE, "aside sidebar widget widgets related sponsor sponsored promo advert advertisement ad ads "
                  "share sharing social comments comment"),
        (R_FOOTER, "footer colophon copyright siteinfo sitefooter pagefooter"),
        (R_HEADER, "header masthead siteheader pageheader topbar"),
        (R_MAIN, "main content article post entry story hentry maincontent articlebody postbody entrycontent "
                 "postcontent storybody"),
        (_PREFIX, "has is no with"),
        (_STATE, "open opened active fixed sticky closed visible hidden expanded collapsed enabled disabled "
                 "scrolled toggled shown")):
    for _w in _words.split():
        _KEYWORDS[_w] = _label
_TAG_LABEL = {"header": R_HEADER, "footer": R_FOOTER, "nav": R_NAV, "aside": R_ASIDE, "form": R_FORM,
              "main": R_MAINTAG, "article": R_ARTICLE, "menu": R_MENU}
_ROLE_LABEL = {"banner": R_HEADER, "navigation": R_NAV, "contentinfo": R_FOOTER, "complementary": R_ASIDE,
               "search": R_FORM, "form": R_FORM, "main": R_MAINTAG, "article": R_ARTICLE, "menu": R_MENU,
               "menubar": R_MENU}
_NAMES = re.compile(r"[^ \t\n\f\r]+")
_NAME_WORDS = re.compile(r"[A-Za-z0-9]+")


def _better(a: int, b: int) -> int:
    if not a:
        return b
    if not b:
        return a
    return b if _RANK[b] < _RANK[a] else a


def _names_label(value: str | None) -> int:
    """The best label of the white-space separated class names (or id) in value."""
    best = main = 0
    for name in _NAMES.findall(value or ""):
        words = _NAME_WORDS.findall(name)
        if not words or len(words) > 16 or sum(map(len, words)) > 127:
            continue
        words = [w.lower() for w in words]
        if _KEYWORDS.get(words[0]) == _PREFIX or _KEYWORDS.get(words[-1]) == _STATE:
            continue
        one = 0
        for w in words + (["".join(words)] if len(words) > 1 else []):
            lab = _KEYWORDS.get(w, 0)
            if 0 < lab < _PREFIX:
                one = _better(one, lab)
        if one == R_MAIN:
            main = 1
        else:
            best = _better(best, one)
    # content and boilerplate words in different names ("content-site one-sidebar") describe the
    # layout of a wrapper, not a region
    return (0 if best else R_MAIN) if main else best


def _role_label(value: str | None) -> int:
    m = _NAMES.search(value or "")
    return _ROLE_LABEL.get(m.group().lower(), 0) if m and m.group().isascii() else 0


def _element_label(tag: str, attrs: dict) -> int:
    if tag in ("html", "body"):
        return 0
    return (_TAG_LABEL.get(tag) or _role_label(attrs.get("role"))
            or _better(_names_label(attrs.get("class")), _names_label(attrs.get("id"))))


def _combine(parent: int, label: int) -> int:
    if not label:
        return parent
    if label == R_MAINTAG:  # boilerplate around <main> was mislabelled
        return R_ARTICLE
    if label in (R_MAIN, R_ARTICLE):  # main content never relabels boilerplate around it
        return label if parent in (R_NONE, R_MAIN) else parent
    if label in (R_HEADER, R_FOOTER) and parent == R_ARTICLE:
        return parent  # an article's own header or footer
    return label


def _region_of(node, memo: dict) -> int:
    """The region of a lexbor element (its own label combined with its ancestors')."""
    chain = []
    p = node
    while p is not None and p.mem_id not in memo:
        chain.append(p)
        p = p.parent
    r = memo[p.mem_id] if p is not None else R_NONE
    for q in reversed(chain):
        tag = q.tag
        if tag and tag[0] not in "#-":
            r = _combine(r, _element_label(tag, q.attributes))
        memo[q.mem_id] = r
    return r


_REGION_OUT = {name: ("main" if name == "article" else name) for name in REGION_NAMES if name}
