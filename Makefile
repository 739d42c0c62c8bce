# Two commands on a fresh machine:
#   make setup   create .venv, install wdb, ingest the real archives, then image bytes (archives first),
#                signals, duplicate groups and a webdataset export of the datacomp_basic recipe
#   make test    create .venv if needed, install, run the whole test suite
PY ?= python3
VENV := .venv
CORPUS ?= ../shared/corpus/warc
# fetch: archived bytes first, then the live web; FETCH_FLAGS=--archived-only stays offline
FETCH_FLAGS ?= --timeout 5 --retries 1
CC_URL ?= https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-20240517233122-20240518023122-00000.warc.gz

$(VENV)/.installed: pyproject.toml setup.py wdb/html/_scan.c wdb/html/_scan_body.h
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,ml,ray,sd]'
	touch $@

.PHONY: setup test browser
setup: $(VENV)/.installed
	# exit code 1 (an archive ended partial, e.g. the corpus's clipped record) still goes on
	if [ -d "$(CORPUS)" ]; then $(VENV)/bin/wdb ingest wdb.db "$(CORPUS)" --fts; \
	else $(VENV)/bin/wdb ingest wdb.db "$(CC_URL)" --fts; fi; \
	rc=$$?; [ $$rc -le 1 ]
	$(VENV)/bin/wdb stats wdb.db
	$(VENV)/bin/wdb fetch wdb.db $(FETCH_FLAGS)
	$(VENV)/bin/wdb signals wdb.db
	$(VENV)/bin/wdb dedup wdb.db
	$(VENV)/bin/wdb export wdb.db datacomp_basic --format webdataset
	@echo "shards: $$(pwd)/wdb.db.wdb/exports/datacomp_basic-webdataset/ (manifest.json, sizes.json, *.tar)"
	@echo "browse: $(VENV)/bin/wdb serve wdb.db   (gallery: /-/wdb/gallery/datacomp_basic)"
	@echo "CLIP scores with real weights: $(VENV)/bin/wdb score wdb.db --model ViT-B-32 --pretrained openai, then the laion2b_en recipe"

# headless Chromium + ChromeDriver (Debian packages) for the browser test
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: $(VENV)/.installed browser
	$(VENV)/bin/python -m pytest -q tests
