# Two commands on a fresh machine:
#   make setup   create .venv, install wdb, ingest the real archives and print stats
#   make test    create .venv if needed, install, run the whole test suite
PY ?= python3
VENV := .venv
CORPUS ?= ../shared/corpus/warc
CC_URL ?= https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-20240517233122-20240518023122-00000.warc.gz

$(VENV)/.installed: pyproject.toml setup.py wdb/html/_scan.c wdb/html/_scan_body.h
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,ml]'
	touch $@

.PHONY: setup test browser
setup: $(VENV)/.installed
	# exit code 1 (an archive ended partial, e.g. the corpus's clipped record) still prints stats
	if [ -d "$(CORPUS)" ]; then $(VENV)/bin/wdb ingest wdb.db "$(CORPUS)" --fts; \
	else $(VENV)/bin/wdb ingest wdb.db "$(CC_URL)" --fts; fi; \
	rc=$$?; [ $$rc -le 1 ] && $(VENV)/bin/wdb stats wdb.db

# headless Chromium + ChromeDriver (Debian packages) for the browser test
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: $(VENV)/.installed browser
	$(VENV)/bin/python -m pytest -q tests
