"""Lazy-loading values, placeholder sources and URL canonicalisation (issues 11 and 12): a candidate
must look like a URL (JSON may hold one), any data-* attribute holding a URL is a candidate, a
placeholder src loses to the real one and never carries a caption, raw spaces are percent-encoded."""
import re

import pytest

from conftest import CORPUS, archive_htmls
from wdb.html.charset import decode_html
from wdb.html.extract import extract
from wdb.html.urls import looks_like_url, resolve, url_in_json

PAGES = sorted((CORPUS / "pages" / "readability" / "test-pages").glob("*/source.html"))
BASE = "https://ex.com/dir/page.html"
GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
NOT_URL = re.compile(r'[{}" ]|\$\{')


def items(html: str, base: str = BASE):
    return [it for it in extract(html, base).items if it.tag != "og:image"]


@pytest.mark.parametrize("attr", ["data-gt-lazy-src", "data-pagespeed-lazy-src", "data-lsrc", "data-cfsrc",
                                  "data-src", "data-lazy-src", "data-original"])
def test_lazy_attribute_beats_a_placeholder_src(attr):
    for src in (GIF, "/img/spacer.gif", "/assets/blank.png", "/x/lazy-placeholder.png"):
        (it,) = items(f'<p>A cat<img src="{src}" {attr}="/photos/cat.jpg" alt="A grey cat"> sleeps</p>')
        assert it.url == "https://ex.com/photos/cat.jpg", (attr, src)
        assert it.placeholder == 1 and it.alt == "A grey cat"
        assert (attr, "/photos/cat.jpg", "https://ex.com/photos/cat.jpg", None) in it.urls


def test_generic_data_attributes_need_a_url_of_the_right_kind():
    # no "src" in the name: a path to an image file is a candidate, an id or a page link is not
    (it,) = items(f'<img src="{GIF}" data-zoom-image="/big/cat.jpg" data-id="1*abc.png" data-href="/article/9">')
    assert it.url == "https://ex.com/big/cat.jpg"
    assert [u[0] for u in it.urls] == ["data-zoom-image", "src"]
    # a real src is not replaced by a generic candidate, which is still recorded
    (it,) = items('<img src="/a/real.jpg" data-hover-src="/a/hover.jpg">')
    assert it.url == "https://ex.com/a/real.jpg" and it.placeholder == 0
    assert ("data-hover-src", "/a/hover.jpg", "https://ex.com/a/hover.jpg", None) in it.urls
    # a data-*srcset and <source data-srcset> inside <picture>
    (it,) = items(f'<img src="{GIF}" data-lazy-srcset2="/s/a-300.jpg 300w, /s/a-900.jpg 900w">')
    assert it.url == "https://ex.com/s/a-900.jpg"
    (it,) = items(f'<picture><source data-srcset="/p/b.webp 2x"><img src="{GIF}" alt="b"></picture>')
    assert it.url == "https://ex.com/p/b.webp" and it.alt == "b"
    # video with its URL in data-src
    (it,) = items('<video data-src="/v/clip.mp4" data-poster="/v/poster.jpg"></video>')
    assert it.url == "https://ex.com/v/clip.mp4"


def test_json_values_hold_a_url_templates_are_not_urls():
    msn = '{"default":"//img-s-msn-com.akamaized.net/tenant/amp/entityid/BB1.img?h=300&amp;w=200","load":"default"}'
    (it,) = items(f"<img src=\"{GIF}\" data-src='{msn}' alt=\"Actor\">")
    assert it.url == "https://img-s-msn-com.akamaized.net/tenant/amp/entityid/BB1.img?h=300&w=200"
    assert url_in_json('[{"w": 3}, {"src": "/a/b.jpg"}]') == "/a/b.jpg"
    assert url_in_json('{"a": "no url here"}') is None and url_in_json("{not json") is None
    page = ('<img src="/i/{width}/a.jpg" data-src="${GDPR}/b.jpg"><img data-src="/t/{id}.jpg" src="c.jpg">'
            '<img srcset="/i/{w}.jpg 2x, /i/ok.jpg 1x">')
    got = items(page)
    assert [it.url for it in got] == ["https://ex.com/dir/c.jpg", "https://ex.com/i/ok.jpg"]
    for v in ("{width}", "${GDPR}", '{"a":1}', "true", "12345", "a b.jpg", "#top", GIF):
        assert not looks_like_url(v), v
    for v in ("/a.jpg", "//cdn.x/a.jpg", "https://x.org/p?q=1", "img/a.png"):
        assert looks_like_url(v), v


def test_placeholder_without_a_real_candidate_gets_no_caption():
    html = ('<figure><img src="/img/spacer.gif" alt="Scattered Thunderstorms"><figcaption>Cap</figcaption></figure>'
            '<p>Scattered Thunderstorms today</p>'
            '<img src="/t/pixel.png" width=1 height=1 alt="tracker">'
            '<img src="/t/x.png" style="width: 1px; height:1px" alt="css tracker">'
            '<img src="/ok/photo.jpg" style="max-width:100%;width:640px" height=480 alt="ok">')
    spacer, pixel, css, ok = items(html)
    for it in (spacer, pixel, css):
        assert it.placeholder == 2 and it.alt is None and it.figcaption is None, it
    assert (ok.placeholder, ok.alt, ok.render_width, ok.render_height) == (0, "ok", 640, 480)
    assert (css.render_width, css.render_height, css.width) == (1, 1, None)


def test_a_src_shared_by_many_items_is_a_placeholder():
    html = "".join(f'<img src="/i/grey.jpg" alt="photo {i}" data-lazy="/p/{i}.jpg">' for i in range(2))
    html += "".join(f'<img src="/i/icon.png" alt="user {i}">' for i in range(3))
    html += '<img src="/i/logo.png" alt="Logo"><img src="/i/logo.png" alt="Logo">'
    got = items(html)
    assert [it.url for it in got[:2]] == ["https://ex.com/p/0.jpg", "https://ex.com/p/1.jpg"]
    assert [it.placeholder for it in got] == [1, 1, 2, 2, 2, 0, 0]
    assert [it.alt for it in got[2:]] == [None, None, None, "Logo", "Logo"]


def test_raw_spaces_and_non_ascii_are_percent_encoded():
    assert resolve(BASE, "my photo.jpg") == "https://ex.com/dir/my%20photo.jpg"
    assert resolve(BASE, " /a b/c.jpg?q=x y ") == "https://ex.com/a%20b/c.jpg?q=x%20y"
    assert resolve(BASE, "/caf\u00e9.jpg") == "https://ex.com/caf%C3%A9.jpg"
    assert resolve(BASE, "/a%20b.jpg") == "https://ex.com/a%20b.jpg"  # already encoded: kept
    assert resolve(BASE, "/a\n/b\t.jpg") == "https://ex.com/a/b.jpg"  # tabs and newlines removed
    assert resolve(BASE, "https://b\u00fccher.de/x.jpg") == "https://xn--bcher-kva.de/x.jpg"
    (it,) = items('<img src="Photo 1 (large).jpg" alt="x">')
    assert it.url == "https://ex.com/dir/Photo%201%20(large).jpg"


def _corpus_htmls():
    for p in PAGES:
        yield p.parent.name, decode_html(p.read_bytes(), "text/html")[0]
    yield from archive_htmls()

_LAZY_VALUE = re.compile(r"(?:https?:)?//\S+|/?[\w./%-]+\.(?:jpe?g|png|gif|webp|avif|svg)(?:\?\S*)?$", re.I)


@pytest.mark.skipif(not PAGES, reason="corpus pages missing")
def test_corpus_urls_are_urls_and_placeholders_lose():
    from selectolax.lexbor import LexborHTMLParser

    pages = taken = 0
    for name, html in _corpus_htmls():
        pages += 1
        page = extract(html, f"https://{name.split('@')[0]}.example.org/a/page.html")
        bad = [it.url for it in page.items if NOT_URL.search(it.url)]
        assert not bad, (name, bad[:3])
        # an independent reading: every <img> whose src is a data: URI or a spacer/blank/lazy file and
        # which has a data-* attribute holding a plain URL of an image takes a data-* URL
        for node in LexborHTMLParser(html).css("img[src]"):
            a = node.attributes
            src = (a.get("src") or "").strip().lower()
            if not (src.startswith("data:") or re.search(r"(spacer|blank|lazy|placeholder)[^/]*$", src)):
                continue
            cands = [v.strip() for k, v in a.items() if k.startswith("data-") and "srcset" not in k and v
                     and _LAZY_VALUE.fullmatch(v.strip())]
            if not cands:
                continue
            mine = [it for it in page.items if it.tag == "img" and any(r == a.get("src") for _, r, _, _ in it.urls)
                    and any(r in cands for _, r, _, _ in it.urls)]
            assert mine, (name, dict(a))
            for it in mine:
                chosen = [r for attr, r, u, _ in it.urls if u == it.url and attr != "src"]
                assert chosen and it.placeholder == 1, (name, it.url, it.urls)
                taken += 1
    assert pages >= 560 and taken >= 100, (pages, taken)
