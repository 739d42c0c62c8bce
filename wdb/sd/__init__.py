"""The text-to-image loop (step 4 of the thesis): fine-tune Stable Diffusion on a recipe's pairs,
generate images for prompt sets, evaluate them automatically and by hand, report base vs fine-tuned.

Bookkeeping and model loops apart, as open_clip keeps open_clip_train apart: `prompts.py` (prompt
sets), `train.py`, `generate.py`, `evaluate.py`, `report.py` each write their rows and a `runs` row;
`models.py` loads diffusers pipelines, `data.py` reads a recipe's pairs through their pointers,
`warc.py` writes the generated PNGs into the database's own WARC, `tiny.py` builds a tiny random
pipeline for tests and the benchmark. Nothing here imports torch until a model is needed.
"""
