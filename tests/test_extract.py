"""Extraction rules on small pages written here, and alt-text matching."""
from wdb.context import WordIndex, find_alt
from wdb.html.extract import extract
from wdb.html.urls import parse_srcset, resolve, url_key

PAGE = """<html lang=en><head><title> My  page </title><base href="http://ex.com/dir/">
<meta property="og:image" content="/og.jpg"></head>
<body><p>Intro text about <b>cats</b>.</p><div>A grey cat sleeping<img src="cat.jpg" alt="A grey cat" width=300 height="200px">after the cat</div>
<picture><source srcset="p.webp 1x, p2.webp 2x"><img src="p.jpg" alt="pic"></picture>
<img src="data:image/gif;base64,R0l" data-src="lazy.jpg" alt="lazy one"><img src="javascript:x">
<figure><img src="f.png" srcset="f-300.png 300w, f-900.png 900w"><figcaption>A figure caption</figcaption></figure>
<video poster=poster.jpg><source src="v.mp4"><track src="subs.vtt"></video><audio src="a.mp3"></audio>
<iframe src="https://www.youtube.com/embed/xyz"></iframe><a href="song.MP3?x=1">download</a> <a href="page.html">no</a>
<script>var a = "<img src=x>";</script><p>End.</p></body></html>"""


def test_items_in_document_order_with_every_url_attribute():
    p = extract(PAGE, "http://ex.com/index.html")
    assert (p.title, p.lang) == ("My page", "en")
    got = [(i.kind, i.tag, i.url, i.alt, i.figcaption) for i in p.items]
    assert got == [
        ("image", "img", "http://ex.com/dir/cat.jpg", "A grey cat", None),
        ("image", "img", "http://ex.com/dir/p.jpg", "pic", None),
        ("image", "img", "http://ex.com/dir/lazy.jpg", "lazy one", None),
        ("image", "img", "http://ex.com/dir/f.png", None, "A figure caption"),
        ("video", "video", "http://ex.com/dir/v.mp4", None, None),
        ("audio", "audio", "http://ex.com/dir/a.mp3", None, None),
        ("embed", "iframe", "https://www.youtube.com/embed/xyz", None, None),
        ("audio", "a", "http://ex.com/dir/song.MP3?x=1", None, None),
        ("image", "og:image", "http://ex.com/og.jpg", None, None),
    ]
    assert p.skipped_urls == 2  # data: and javascript:
    cat = p.items[0]
    assert (cat.width, cat.height) == (300, 200)
    assert p.items[1].urls[1:] == [("picture>source", "p.webp", "http://ex.com/dir/p.webp", "1x"),
                                   ("picture>source", "p2.webp", "http://ex.com/dir/p2.webp", "2x")]
    assert [u[0] for u in p.items[4].urls] == ["poster", "source", "track"]
    assert [(u[0], u[3]) for u in p.items[3].urls] == [("src", None), ("srcset", "300w"), ("srcset", "900w")]


def test_text_media_text_order_is_exact():
    p = extract(PAGE, "http://ex.com/index.html")
    assert p.text.startswith("Intro text about cats.\n\nA grey cat sleeping after the cat")
    assert "var a" not in p.text
    cat = p.items[0]
    assert p.text[:cat.pos].endswith("A grey cat sleeping ")
    assert p.text[cat.pos:].startswith("after the cat")
    positions = [i.pos for i in p.items if i.pos is not None]
    assert positions == sorted(positions)
    assert p.items[-1].pos is None  # og:image is not in the flow


def test_urls_and_srcset():
    assert parse_srcset("a.jpg 1x, b.jpg 2x") == [("a.jpg", "1x"), ("b.jpg", "2x")]
    assert parse_srcset("https://x/w_300,h_200/c.jpg 300w,d.jpg") == [("https://x/w_300,h_200/c.jpg", "300w"), ("d.jpg", "")]
    assert parse_srcset(", ,") == []
    assert resolve("http://a.com/x/y.html", "../i.png") == "http://a.com/i.png"
    assert resolve("http://a.com/", "//cdn.b.com/z.jpg") == "http://cdn.b.com/z.jpg"
    for bad in ("java\tscript:alert(1)", "JaVaScRiPt:x", "data:image/png;base64,xx", "file:///etc/passwd",
                "http://[::1", "", "   ", "#top"):
        assert resolve("http://a.com/", bad) is None
    assert url_key("https://www.Foo.com:443/a.jpg#x") == url_key("http://foo.com/a.jpg") == "foo.com/a.jpg"


def test_windows_count_words():
    text = " ".join(f"w{i}" for i in range(1000))
    pos = text.index("w500")
    lo, hi = WordIndex(text).window(pos, 256)
    assert text[lo:pos].split() == [f"w{i}" for i in range(244, 500)]
    assert text[pos:hi].split() == [f"w{i}" for i in range(500, 756)]


def test_alt_match_kinds():
    text = "Photo: A Grey Cat, sleeping. Then more text here. The grey cat was seen sleeping on a mat."
    pos = text.index("Then")
    m = find_alt(text, "A Grey Cat", 0, pos, len(text))
    assert (m.kind, m.side, text[m.start:m.end]) == ("exact", "before", "A Grey Cat")
    m = find_alt(text, "a grey-cat!", 0, pos, len(text))
    assert (m.kind, text[m.start:m.end]) == ("normalised", "A Grey Cat")
    m = find_alt(text, "grey cat sleeping on the mat", pos, pos, len(text))
    # the best run of 6 words holds 4 of the alt's 6 words (the, grey, cat, sleeping)
    assert (m.kind, m.side, m.score) == ("partial", "after", round(4 / 6, 4))
    assert text[m.start:m.end] == "The grey cat was seen sleeping"
    assert find_alt(text, "a dog", 0, pos, len(text)) is None
    assert find_alt(text, "Cat", 0, pos, len(text)).kind == "exact"
    assert find_alt(text, "ca", 0, pos, len(text)) is None  # whole words only
    assert find_alt(text, "Gre", 0, pos, len(text)) is None
