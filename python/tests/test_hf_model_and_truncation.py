"""DebertaV2PairRM (the model card's class) on token rows, and configurable truncation: llm-blender's
source_maxlength / candidate_maxlength (loadranker) and source_max_length / candidate_max_length (rank) give the
rows of the model card's tokenize_pair(source_max_length=..., candidate_max_length=...)."""
import math

import numpy as np
import pytest

import pairrm
from conftest import logit_tolerance, model_dir
from pairrm.hf import DebertaV2PairRM

SRC, C1, C2 = 128001, 128002, 128003


@pytest.fixture(scope="module")
def card_model():
    return DebertaV2PairRM.from_pretrained(model_dir("tiny"), threads=2).eval()


def padded(rows, left=False, length=None):
    length = length or max(len(r) for r in rows)
    pad = [[0] * (length - len(r)) for r in rows]
    ids = [p + r if left else r + p for r, p in zip(rows, pad, strict=True)]
    mask = [[0] * len(p) + [1] * len(r) if left else [1] * len(r) + [0] * len(p)
            for r, p in zip(rows, pad, strict=True)]
    return np.array(ids), np.array(mask)


def test_rows_padding_and_outputs(card_model, text_cases):
    rows = [r["input_ids"] for r in text_cases["pair_rows"]]
    expected = [e["logit_f64"] for e in text_cases["models"]["tiny"]["compare_ab"]]
    ids, mask = padded(rows)
    out = card_model(input_ids=ids, attention_mask=mask)
    assert out.logits.dtype == np.float32 and out.logits.shape == (len(rows),)
    assert len(expected) == len(rows) == 12
    for g, w in zip(out.logits, expected, strict=True):
        assert abs(g - w) <= logit_tolerance(w)
    # Left padding is the same computation (relative positions only); so are lists and a single row.
    left = card_model(*padded(rows, left=True)).logits
    np.testing.assert_array_equal(left, out.logits)
    np.testing.assert_array_equal(card_model(input_ids=[rows[0]]).logits, out.logits[:1])
    assert out["logits"] is out.logits and out[0] is out.logits and out.keys() == ["logits"]
    tup = card_model(input_ids=ids, attention_mask=mask, return_dict=False)
    assert isinstance(tup, tuple) and len(tup) == 1
    # labels: llm-blender's loss, mean of -log sigmoid(sign(label) * logit)
    labels = np.array([[1], [-1]] * 6)
    loss = card_model(input_ids=ids, attention_mask=mask, labels=labels).loss
    want = np.mean([-math.log(1 / (1 + math.exp(-s * z))) for s, z in zip(labels[:, 0], expected, strict=True)])
    assert abs(float(loss) - want) <= 1e-4


def test_row_errors(card_model, text_cases):
    row = text_cases["pair_rows"][0]["input_ids"]
    with pytest.raises(AssertionError, match=r"<\|candidate2\|> id not in input_ids"):  # llm-blender asserts
        card_model(input_ids=[[t for t in row if t != C2]])
    with pytest.raises(ValueError, match="2-D"):
        card_model(input_ids=np.array(row))
    with pytest.raises(ValueError, match="shape"):
        card_model(input_ids=[row], attention_mask=[[1]])
    with pytest.raises(pairrm.Error, match="vocabulary"):
        card_model(input_ids=[row + [10 ** 6]])
    with pytest.raises(NotImplementedError, match="hidden states"):
        card_model(input_ids=[row], output_hidden_states=True)
    with pytest.warns(UserWarning, match="ignored"):
        card_model.to("cuda:1")
    assert card_model.to(np.float32) is card_model and str(card_model.device) == "cpu"
    assert card_model.config.source_prefix_id == SRC and card_model.config.to_dict()["n_tasks"] == 1


def test_from_pretrained_repo_ids(hub_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = DebertaV2PairRM.from_pretrained("llm-blender/PairRM-hf", cache_dir=hub_cache, local_files_only=True)
    assert "models--llm-blender--PairRM-hf" in m.engine.path
    with pytest.raises(OSError, match="local_files_only"):
        DebertaV2PairRM.from_pretrained("llm-blender/PairRM-hf", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(pairrm.Error, match="HF_HUB_OFFLINE"):
        DebertaV2PairRM.from_pretrained("llm-blender/PairRM-hf", cache_dir=tmp_path)


def segments(row):
    """The bodies of a model-card row [CLS] <src> S [SEP] [CLS] <c1> C1 [SEP] [CLS] <c2> C2 [SEP]."""
    p1, p2 = row.index(C1), row.index(C2)
    return row[2:p1 - 2], row[p1 + 1:p2 - 2], row[p2 + 1:-1]


def card_row(source, cand1, cand2, source_max_length, candidate_max_length):
    """The model card's tokenize_pair() on token bodies: encode(prefix + text, max_length, truncation=True)
    keeps [CLS], the prefix and max_length - 3 tokens, then [SEP]."""
    max_length = source_max_length + 2 * candidate_max_length
    source_ids = [1, SRC] + source[:source_max_length - 3] + [2]
    cmax = (max_length - len(source_ids)) // 2
    return source_ids + [1, C1] + cand1[:cmax - 3] + [2] + [1, C2] + cand2[:cmax - 3] + [2]


# Rows 10 and 11 are the long ones (1510 and 1987 tokens): a long source, and a short source whose unused
# length goes to the candidates.
LIMITS = [(64, 32), (300, 100), (1224, 412)]


@pytest.mark.parametrize("source_max,cand_max", LIMITS)
def test_truncation_is_the_model_cards(card_model, text_cases, source_max, cand_max):
    rows = [text_cases["pair_rows"][i] for i in (10, 11)]
    assert max(len(r["input_ids"]) for r in rows) > 1900
    b = pairrm.Blender()
    b.loadranker(model_dir("tiny"), source_maxlength=source_max, candidate_maxlength=cand_max, special_tokens="hf",
                 threads=2)
    assert (b.ranker_config.source_maxlength, b.ranker_config.candidate_maxlength) == (source_max, cand_max)
    want = card_model(*padded([card_row(*segments(r["input_ids"]), source_max, cand_max) for r in rows])).logits
    got = b.compare([r["source"] for r in rows], [r["candidate1"] for r in rows], [r["candidate2"] for r in rows],
                    mode="[A,B]", return_logits=True)
    np.testing.assert_array_equal(got, want)  # the same rows through the engine: bitwise
    if (source_max, cand_max) == (1224, 412):  # the defaults: the fixture's rows and logits
        fixture = [text_cases["models"]["tiny"]["compare_ab"][i]["logit_f64"] for i in (10, 11)]
        for g, e in zip(got, fixture, strict=True):
            assert abs(g - e) <= logit_tolerance(e)


def test_per_call_lengths_in_rank(card_model, text_cases):
    row = text_cases["pair_rows"][10]
    src, c1, c2 = segments(row["input_ids"])
    b = pairrm.Blender()
    b.loadranker(model_dir("tiny"), special_tokens="hf", threads=2)
    texts = ([row["source"]], [[row["candidate1"], row["candidate2"]]])
    scores = b.rank(*texts, return_scores=True, source_max_length=64, candidate_max_length=32)
    m01, m10 = card_model(*padded([card_row(src, c1, c2, 64, 32), card_row(src, c2, c1, 64, 32)])).logits
    # float32 scores of the engine's float64 logits vs. a mean of float32-rounded logits: 1e-6.
    np.testing.assert_allclose(scores[0], [(m01 - m10) / 2, (m10 - m01) / 2], rtol=0, atol=1e-6)
    assert len(b._engines) == 2  # the per-call limits loaded a second engine, once
    b.rank(*texts, source_max_length=64, candidate_max_length=32)
    b.rank(*texts, source_max_length=None, candidate_max_length=0)  # llm-blender's `x or default`
    assert len(b._engines) == 2
    loaded = pairrm.Blender()
    loaded.loadranker(model_dir("tiny"), special_tokens="hf", source_maxlength=64, candidate_maxlength=32)
    np.testing.assert_array_equal(loaded.rank(*texts, return_scores=True), scores)
    # rank_with_ref honours them too (llm-blender's docstring names them; its compare() would refuse them).
    np.testing.assert_array_equal(
        b.rank_with_ref(*texts, return_scores=True, source_max_length=64, candidate_max_length=32),
        loaded.rank_with_ref(*texts, return_scores=True))
