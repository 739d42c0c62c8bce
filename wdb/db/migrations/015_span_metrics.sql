-- wdb schema, part 15: span-extractor figures that answering "no description" cannot game.

-- none_prob at or above which a prediction of this run is "no description"; chosen on the
-- validation split, where it answers "none" as often as "none" is true (runs of the first wdb with
-- this column chose it for the best combined F1; NULL: a run from before, none when none_prob >= confidence)
ALTER TABLE span_runs ADD COLUMN none_threshold REAL;
-- the epoch whose weights were kept: the best validation span IoU (early stopping)
ALTER TABLE span_runs ADD COLUMN best_epoch INTEGER;

-- per epoch and split: token EM/IoU on the windows of examples WITH a true span (the best span,
-- whatever none_prob says; a true span outside the window scores 0): the early-stopping figure
CREATE TABLE span_epoch_spans (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    epoch INTEGER NOT NULL,            -- 0: before training
    split TEXT NOT NULL,               -- train (its first 512 windows) | validation
    span_n INTEGER NOT NULL,           -- windows of examples with a true span
    span_em REAL,
    span_iou REAL,
    PRIMARY KEY (run_id, epoch, split)
);

-- character-level figures per run, split, method and group, at the run's none threshold:
-- written by `wdb spans train` (model, every split, group all) and `wdb spans eval` (test split:
-- model and baselines, by description type, confidence bin, and figcaption truth)
CREATE TABLE span_metrics (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    split TEXT NOT NULL,               -- train | validation | test
    method TEXT NOT NULL,              -- model | nearest_sentence | figcaption | random
    grp TEXT NOT NULL,                 -- all | exact | normalised | partial | none | figcaption (label kind) | figcaption_truth | conf:0.8-1.0 ...
    n INTEGER NOT NULL,                -- examples
    span_n INTEGER NOT NULL,           -- of which with a true span
    span_em REAL,                      -- exact match on the examples with a true span ("none" scores 0)
    span_iou REAL,                     -- character IoU on the examples with a true span ("none" scores 0)
    none_precision REAL,               -- share of the answers "none" that are right
    none_recall REAL,                  -- share of the true "none" examples answered "none"
    f1 REAL,                           -- macro F1 of the classes span (IoU >= 0.5 counts) and none
    none_share REAL,                   -- share of answers that are "none"
    true_none_share REAL,              -- share of examples whose truth is "none"
    PRIMARY KEY (run_id, split, method, grp)
);
