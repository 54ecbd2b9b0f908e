"""Every value of text_cases.json reproduced through the Python API, for both fixture models."""
import numpy as np
import pytest

import pairrm
from conftest import blender_for, logit_tolerance, model_dir

MODELS = ["tiny", "tiny_b"]


def test_tokenize_matches_reference_ids(text_cases):
    literal = pairrm.Model(model_dir("tiny"))
    hf = pairrm.Model(model_dir("tiny"), special_tokens="hf")
    assert text_cases["encode_cases"]
    for case in text_cases["encode_cases"]:
        assert literal.tokenize(case["text"]).tolist() == case["ids_literal_fast"], case["text"]
        assert hf.tokenize(case["text"]).tolist() == case["ids_hf_fast"], case["text"]
    ids = literal.tokenize("hello!")
    assert ids.dtype == np.int32


def test_build_row_matches_reference_rows(text_cases):
    hf = pairrm.Model(model_dir("tiny"), special_tokens="hf")  # pair_rows use ids_hf semantics
    assert text_cases["pair_rows"]
    for row in text_cases["pair_rows"]:
        got = hf.build_row(row["source"], row["candidate1"], row["candidate2"])
        assert got["ids"].tolist() == row["input_ids"]
        assert len(got["ids"]) == row["length"]
        ids = got["ids"]
        assert ids[got["source_pos"]] == 128001 and ids[got["cand1_pos"]] == 128002 and ids[got["cand2_pos"]] == 128003


@pytest.mark.parametrize("name", MODELS)
def test_compare_ab_logits(text_cases, name):
    rows = text_cases["pair_rows"]
    expected = text_cases["models"][name]["compare_ab"]
    model = blender_for(name).ranker
    got = model.compare([rows[e["row"]]["source"] for e in expected], [rows[e["row"]]["candidate1"] for e in expected],
                        [rows[e["row"]]["candidate2"] for e in expected], mode="[A,B]")
    want = np.array([e["logit_f64"] for e in expected])
    assert got["score"].dtype == np.float64 and len(expected) > 0
    np.testing.assert_array_equal(got["score"], got["logit_ab"])
    assert np.isnan(got["logit_ba"]).all()
    for g, w in zip(got["score"], want, strict=True):
        assert abs(g - w) <= logit_tolerance(w)
    # The same rows through the low-level path: build_row + logits, bitwise equal.
    rows_ = [model.build_row(rows[e["row"]]["source"], rows[e["row"]]["candidate1"], rows[e["row"]]["candidate2"])
             for e in expected]
    np.testing.assert_array_equal(model.logits(rows_), got["score"])


@pytest.mark.parametrize("name", MODELS)
def test_compare_modes(text_cases, name):
    rows = text_cases["pair_rows"]
    cases = text_cases["models"][name]["compare_modes"]
    b = blender_for(name)
    src = [rows[c["row"]]["source"] for c in cases]
    a = [rows[c["row"]]["candidate1"] for c in cases]
    bb = [rows[c["row"]]["candidate2"] for c in cases]
    default = b.compare(src, a, bb, return_logits=True)
    ab = b.compare(src, a, bb, return_logits=True, mode="[A,B]")
    ba = b.compare(src, a, bb, return_logits=True, mode="[B,A]")
    better = b.compare(src, a, bb)
    assert cases and default.dtype == np.float32 and default.shape == (len(cases),)
    assert better.dtype == np.bool_ and better.shape == (len(cases),)
    for i, c in enumerate(cases):
        # float32 results: the 1e-4 logit tolerance, doubled for the difference of two logits.
        assert abs(default[i] - c["default"]) <= 2 * logit_tolerance(c["default"])
        assert abs(ab[i] - c["ab"]) <= logit_tolerance(c["ab"])
        assert abs(ba[i] - c["ba"]) <= logit_tolerance(c["ba"])  # "[B,A]" is logit(B,A), not negated
        assert bool(better[i]) == c["better_default"]
    np.testing.assert_array_equal(better, default > 0)


@pytest.mark.parametrize("name", MODELS)
def test_rank_cases(text_cases, name):
    b = blender_for(name)
    assert text_cases["models"][name]["rank_cases"]
    for case in text_cases["models"][name]["rank_cases"]:
        ranks = b.rank([case["source"]], [case["candidates"]])
        scores = b.rank([case["source"]], [case["candidates"]], return_scores=True)
        n = len(case["candidates"])
        assert ranks.dtype == np.int32 and ranks.shape == (1, n)
        assert scores.dtype == np.float32 and scores.shape == (1, n)
        assert ranks[0].tolist() == case["ranks"]
        np.testing.assert_allclose(scores[0], case["scores"], rtol=0, atol=2e-4)  # a mean of logit differences
        ref = case["rank_with_ref_longest"]
        assert b.rank_with_ref([case["source"]], [case["candidates"]])[0].tolist() == ref["ranks"]
        np.testing.assert_allclose(b.rank_with_ref([case["source"]], [case["candidates"]], return_scores=True)[0],
                                   ref["scores"], rtol=0, atol=2e-4)
        # The reference given explicitly is the same computation.
        np.testing.assert_array_equal(
            b.rank_with_ref([case["source"]], [case["candidates"]], ref_candidates=[ref["reference"]], return_scores=True),
            b.rank_with_ref([case["source"]], [case["candidates"]], return_scores=True))
        # All inputs at once equal one at a time (each row is computed alone).
    all_cases = text_cases["models"][name]["rank_cases"]
    same_n = [c for c in all_cases if len(c["candidates"]) == len(all_cases[0]["candidates"])]
    assert len(same_n) >= 2  # "at once" needs several inputs
    together = b.rank([c["source"] for c in same_n], [c["candidates"] for c in same_n], return_scores=True)
    assert len(together) == len(same_n)
    for i, c in enumerate(same_n):
        np.testing.assert_array_equal(together[i], b.rank([c["source"]], [c["candidates"]], return_scores=True)[0])


@pytest.mark.parametrize("name", MODELS)
def test_conversation_cases(text_cases, name):
    b = blender_for(name)
    assert text_cases["models"][name]["conversation_cases"]
    for case in text_cases["models"][name]["conversation_cases"]:
        conv_a, conv_b = [case["conversation_a"]], [case["conversation_b"]]
        default = b.compare_conversations(conv_a, conv_b, return_logits=True)
        ab = b.compare_conversations(conv_a, conv_b, return_logits=True, mode="[A,B]")
        ba = b.compare_conversations(conv_a, conv_b, return_logits=True, mode="[B,A]")
        assert abs(default[0] - case["default"]) <= 2 * logit_tolerance(case["default"])
        assert abs(ab[0] - case["ab"]) <= logit_tolerance(case["ab"])
        assert abs(ba[0] - case["ba"]) <= logit_tolerance(case["ba"])
        assert b.compare_conversations(conv_a, conv_b).tolist() == [case["default"] > 0]
        # The strings llm-blender builds: the same numbers through compare() with an instruction.
        instruction = ("Finish the following coversation in each i-th turn by filling in <Response i> with your "
                       "response.")
        inputs = [case["source_text"][len(instruction):]]
        assert case["source_text"].startswith(instruction)
        np.testing.assert_array_equal(
            b.compare(inputs, [case["candidate_a_text"]], [case["candidate_b_text"]], instructions=[instruction],
                      return_logits=True), default)
