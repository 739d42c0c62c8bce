-- wdb schema, part 16: the current version of a signal, found by one index seek.
--
-- Recipes read the most recently computed version of each signal: the version of its row with the
-- greatest run_id (SELECT version FROM text_signals WHERE signal = ? ORDER BY run_id DESC, version
-- DESC LIMIT 1; built-in recipes make up to 4 such lookups per run, the gallery one per recipe per
-- page). With only (signal, version, ...) indexed, each lookup reads every row of the signal and
-- sorts them (69 ms per lookup on bench/signals_bench.py's 300 MB database, about 75,000 rows per
-- text signal, growing with the texts); with (signal, run_id, version) it is one seek (0.007 ms),
-- and `wdb signals` costs the same with these indexes (23.0 / 23.2 CPU-s). Rows are written in run
-- order, so the index grows at its end for each signal. On an existing database this migration
-- builds the indexes once (a sort of each table).
CREATE INDEX IF NOT EXISTS text_signals_current ON text_signals(signal, run_id, version);
CREATE INDEX IF NOT EXISTS image_signals_current ON image_signals(signal, run_id, version);
CREATE INDEX IF NOT EXISTS page_signals_current ON page_signals(signal, run_id, version);
