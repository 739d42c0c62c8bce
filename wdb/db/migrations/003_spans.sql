-- wdb schema, part 3: the span extractor (training runs, splits, per-epoch metrics, predictions).

-- one row per `wdb spans train`: every hyper-parameter, the seed, the backbone and the checkpoint
CREATE TABLE span_runs (
    id INTEGER PRIMARY KEY,
    base TEXT NOT NULL,                -- backbone: Hugging Face id or local directory
    params TEXT NOT NULL,              -- JSON: epochs, lr, batch size, max length, stride, iou weight, ...
    seed INTEGER NOT NULL,
    checkpoint TEXT,                   -- directory of the saved model, next to the database
    split_counts TEXT,                 -- JSON: examples and domains per split
    status TEXT NOT NULL DEFAULT 'running', -- running | done | failed
    started_at TEXT NOT NULL,
    finished_at TEXT,
    train_seconds REAL
);

-- the data split of a run: by site (domain), never by row
CREATE TABLE span_examples (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    media_id INTEGER NOT NULL REFERENCES media(id),
    split TEXT NOT NULL,               -- train | validation | test
    label TEXT NOT NULL,               -- span (alt text found in context) | none (alt text not found)
    PRIMARY KEY (run_id, media_id)
);
CREATE INDEX span_examples_split ON span_examples(run_id, split);

-- loss, Exact Match and IoU per epoch on train and validation
CREATE TABLE span_epochs (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    epoch INTEGER NOT NULL,            -- 0: before training
    split TEXT NOT NULL,
    loss REAL,
    em REAL,                           -- exact match of (start, end), "no span" counts when both say none
    iou REAL,                          -- token-level intersection over union of the spans
    examples INTEGER,
    PRIMARY KEY (run_id, epoch, split)
);

-- the best description span of an image's context, per run ("no description" has start NULL)
CREATE TABLE spans (
    media_id INTEGER NOT NULL REFERENCES media(id),
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    start INTEGER,                     -- character span in pages.text
    "end" INTEGER,
    text TEXT,
    start_prob REAL,
    end_prob REAL,
    confidence REAL,                   -- start_prob * end_prob of the chosen span
    none_prob REAL,                    -- probability of "no description"
    PRIMARY KEY (media_id, run_id)
);

-- evaluation on the test split: model and baselines, by description type and confidence bin
CREATE TABLE span_evals (
    run_id INTEGER NOT NULL REFERENCES span_runs(id),
    method TEXT NOT NULL,              -- model | nearest_sentence | figcaption | random
    grp TEXT NOT NULL,                 -- all | exact | normalised | partial | none | figcaption | conf:0.8-1.0 ...
    n INTEGER NOT NULL,
    em REAL,
    iou REAL,
    PRIMARY KEY (run_id, method, grp)
);
