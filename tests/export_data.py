"""A WARC of real COCO photos (captions as alt text) on a few pages, ingested, fetched from the
archive and given signals: the database the export tests read."""
from __future__ import annotations

import io
from pathlib import Path


from conftest import CORPUS, coco_caption_lists, coco_photos
from warcs import gz_members, http

COCO = CORPUS / "coco-mini"
HOST = "http://photos.example.org"


def coco(n: int) -> tuple[list[Path], dict[str, str]]:
    return coco_photos(n), {k: " ".join(v[0].split()) for k, v in coco_caption_lists().items()}


def build(d: Path, n_photos: int = 24, per_page: int = 6, signals: bool = True) -> Path:
    """Pages of `per_page` COCO photos each, plus odd items: a GIF (re-encoded), a PNG, a 100-px
    thumbnail (too small for DataComp's filter), a filename alt, a French alt, an image the archive
    does not hold, and a real audio recording (corpus media/bell.oga) with a title."""
    from PIL import Image

    from wdb.db import open_db
    from wdb.fetch import FetchSettings, fetch
    from wdb.ingest import ingest
    from wdb.warc.write import warc_record

    files, caps = coco(n_photos)
    images: dict[str, tuple[bytes, str]] = {}
    pages: list[list[tuple[str, str]]] = []
    for i in range(0, len(files), per_page):
        items = []
        for f in files[i:i + per_page]:
            images[f"/img/{f.name}"] = (f.read_bytes(), "image/jpeg")
            items.append((f"/img/{f.name}", caps[f.name]))
        pages.append(items)
    im = Image.open(files[0]).convert("RGB")
    b = io.BytesIO(); im.save(b, "GIF"); images["/odd/photo.gif"] = (b.getvalue(), "image/gif")
    b = io.BytesIO(); im.save(b, "PNG"); images["/odd/photo.png"] = (b.getvalue(), "image/png")
    b = io.BytesIO(); im.resize((100, 75)).save(b, "JPEG", quality=90); images["/odd/thumb.jpg"] = (b.getvalue(), "image/jpeg")
    odd = [("/odd/photo.gif", "A street scene saved as an animated picture file"),
           ("/odd/photo.png", "The same street scene as a lossless picture"),
           ("/odd/thumb.jpg", "A tiny thumbnail of the street scene for previews"),
           (f"/img/{files[1].name}", "IMG_1234.jpg"),
           (f"/img/{files[2].name}", "Une rue de la ville avec des voitures et des passants"),
           ("/missing/never-archived.jpg", "A photo that nobody archived or fetched for us")]
    pages.append(odd)
    images["/media/bell.oga"] = ((CORPUS / "media" / "bell.oga").read_bytes(), "audio/ogg")
    recs = []
    for n, items in enumerate(pages):
        body = "".join(f"<p>Paragraph {j} of page {n}: readers sent these pictures this week.</p>"
                       f'<img src="{HOST}{p}" alt="{a}">' for j, (p, a) in enumerate(items))
        if n == len(pages) - 1:  # a real sound recording too, titled
            body += f'<p>And a sound from the street.</p><audio src="{HOST}/media/bell.oga" title="A bell rings"></audio>'

        page = f"<html lang='en'><head><title>Photos {n}</title></head><body><h1>Photos {n}</h1>{body}<p>The end.</p></body></html>"
        recs.append(warc_record("response", f"{HOST}/page{n}.html", http(page.encode()), None, "2024-05-18T01:58:10Z"))
    for p, (data, mime) in images.items():
        recs.append(warc_record("response", f"{HOST}{p}", http(data, mime), None, "2024-05-18T01:58:11Z"))
    d.mkdir(parents=True, exist_ok=True)
    (d / "photos.warc.gz").write_bytes(gz_members(recs))
    db = d / "photos.db"
    conn = open_db(db)
    ingest(conn, [str(d / "photos.warc.gz")], workers=0, progress=False, quiet=True)
    # archive first; the one image nobody archived goes to a closed local port and fails at once
    conn.execute("UPDATE media SET url = 'http://127.0.0.1:9/never-archived.jpg' WHERE url LIKE '%never-archived%'")
    fetch(conn, FetchSettings(allow_private=("127.0.0.1/32",), retries=0, timeout=2), progress=False,
          log=io.StringIO())
    if signals:
        from wdb.curate import SignalsSettings, signals as run_signals

        run_signals(conn, SignalsSettings(families=("lang", "stats", "image"), sources=("alt",)), progress=False)
    conn.close()
    return db


ALL_ALTS = """-- title: every image with an alt text (the superset of the tests)
-- description: every image item with a non-empty alt, in id order
SELECT m.id AS media_id, m.alt AS text, 'alt' AS text_source, m.seq AS seq FROM media m
WHERE m.kind = 'image' AND m.alt IS NOT NULL AND m.alt != '' ORDER BY m.id
"""


WITH_AUDIO = """-- title: images by alt, audio by title
SELECT m.id AS media_id, coalesce(nullif(m.alt, ''), m.title) AS text,
       CASE WHEN m.kind = 'image' THEN 'alt' ELSE 'title' END AS text_source FROM media m
WHERE (m.kind = 'image' AND m.alt != '') OR (m.kind = 'audio' AND m.title IS NOT NULL) ORDER BY m.id
"""


def built_with_all_alts(tmp_path_factory, name: str) -> tuple[Path, Path]:
    """(database built as above, a recipe file selecting every alt pair) in a fresh folder."""
    d = tmp_path_factory.mktemp(name)
    path = build(d)
    (d / "all.sql").write_text(ALL_ALTS)
    return path, d / "all.sql"
