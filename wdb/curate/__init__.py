"""Curation signals and duplicate groups: `signals()` and `dedup()` (the `wdb signals` / `wdb dedup`
stages). Nothing is deleted: signals are rows in text_signals / page_signals / image_signals, and
duplicates are rows in dup_groups with the view dup_keep, so dataset recipes are plain SQL."""
from .dedup import METHODS, DedupSettings, dedup
from .signals import FAMILIES, SOURCES, SignalsSettings, signals

__all__ = ["FAMILIES", "METHODS", "SOURCES", "DedupSettings", "SignalsSettings", "dedup", "signals"]
