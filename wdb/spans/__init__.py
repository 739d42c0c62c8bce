"""The span extractor: find where a page describes its image in the text around it.

data.py (examples and splits, no torch), model.py (backbone, windows, losses, decoding),
train.py, predict.py, evaluate.py. Torch and transformers are imported only in the latter.
"""
