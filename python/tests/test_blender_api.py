"""llm-blender's Blender and trl's PairRMJudge: return types, shapes and the semantics that tie the calls
together (derived invariants, checked against the engine's own pairwise logits)."""
import math

import numpy as np
import pytest

import pairrm
from conftest import llm_blender_module, model_dir

SOURCE = "What is the capital of France?"
CANDS = ["Paris.", "It is Paris, on the Seine.", "London.", "I don't know.", "paris"]


def pairwise(blender, source, cands):
    """M[i][j] = logit(i over j) from the low-level API."""
    m = blender.ranker
    n = len(cands)
    rows = [m.build_row(source, cands[i], cands[j]) for i in range(n) for j in range(n) if i != j]
    logits = iter(m.logits(rows))
    return np.array([[0.0 if i == j else next(logits) for j in range(n)] for i in range(n)])


def test_rank_is_the_mean_of_pairwise_differences(tiny):
    M = pairwise(tiny, SOURCE, CANDS)
    scores = tiny.rank([SOURCE], [CANDS], return_scores=True)[0]
    np.testing.assert_allclose(scores, (M - M.T).mean(axis=1), rtol=1e-6, atol=1e-7)  # float32 rounding
    ranks = tiny.rank([SOURCE], [CANDS])[0]
    assert sorted(ranks.tolist()) == list(range(1, len(CANDS) + 1))
    assert np.argmin(ranks) == np.argmax(scores)


def test_rank_shapes_ragged_and_single(tiny):
    two = tiny.rank([SOURCE, "hi"], [CANDS[:3], ["a", "b", "c"]])
    assert isinstance(two, np.ndarray) and two.shape == (2, 3) and two.dtype == np.int32
    ragged = tiny.rank([SOURCE, "hi"], [CANDS, ["a", "b"]])  # llm-blender refuses these; we return a list
    assert isinstance(ragged, list) and [r.shape for r in ragged] == [(5,), (2,)]
    np.testing.assert_array_equal(ragged[0], tiny.rank([SOURCE], [CANDS])[0])
    one = tiny.rank(["hi"], [["only"]], return_scores=True)
    assert one.tolist() == [[0.0]] and tiny.rank(["hi"], [["only"]]).tolist() == [[1]]
    assert tiny.rank([], []).__len__() == 0


def test_instructions_are_prepended_without_separator(tiny):
    np.testing.assert_array_equal(tiny.rank(["France?"], [CANDS], instructions=["Capital of "], return_scores=True),
                                  tiny.rank(["Capital of France?"], [CANDS], return_scores=True))
    np.testing.assert_array_equal(
        tiny.compare(["France?"], ["a"], ["b"], instructions=["Capital of "], return_logits=True),
        tiny.compare(["Capital of France?"], ["a"], ["b"], return_logits=True))


def test_compare_equals_pairwise_logits(tiny):
    M = pairwise(tiny, SOURCE, CANDS[:2])
    got = tiny.compare([SOURCE], [CANDS[0]], [CANDS[1]], return_logits=True)
    assert got.dtype == np.float32
    assert got[0] == np.float32(M[0, 1] - M[1, 0])
    assert tiny.compare([SOURCE], [CANDS[0]], [CANDS[1]], mode="[B,A]", return_logits=True)[0] == np.float32(M[1, 0])


def test_best_and_worst_of_n(tiny):
    M = pairwise(tiny, SOURCE, CANDS)
    scores = (M - M.T).mean(axis=1)
    # full: the best / worst score
    assert tiny.get_best_of_n([SOURCE], [CANDS], pairrm_cmp_type="full") == [CANDS[int(np.argmax(scores))]]
    assert tiny.get_worst_of_n([SOURCE], [CANDS], pairrm_cmp_type="full") == [CANDS[int(np.argmin(scores))]]
    full_all = tiny.get_best_of_n([SOURCE], [CANDS], pairrm_cmp_type="full", return_all=True)[0].tolist()
    assert full_all == [CANDS[i] for i in np.argsort(-scores, kind="stable")]
    worst_all = tiny.get_worst_of_n([SOURCE], [CANDS], pairrm_cmp_type="full", return_all=True)[0].tolist()
    assert worst_all == [CANDS[i] for i in np.argsort(scores, kind="stable")]
    # bubble in the given order, replayed from the pairwise logits
    cur, losers = 0, []
    for nxt in range(1, len(CANDS)):
        s = M[cur, nxt] - M[nxt, cur]
        losers.append(nxt if s > 0 else cur)
        cur = cur if s > 0 else nxt
    assert tiny.get_best_of_n([SOURCE], [CANDS]) == [CANDS[cur]]
    assert tiny.get_best_of_n([SOURCE], [CANDS], return_all=True) == [[CANDS[i] for i in [cur] + losers]]
    cur = 0
    for nxt in range(1, len(CANDS)):
        cur = cur if M[cur, nxt] - M[nxt, cur] < 0 else nxt
    assert tiny.get_worst_of_n([SOURCE], [CANDS]) == [CANDS[cur]]
    # a seeded order is deterministic and still returns a candidate; every candidate appears once in return_all
    a = tiny.get_best_of_n([SOURCE], [CANDS], seed=7, return_all=True)
    assert a == tiny.get_best_of_n([SOURCE], [CANDS], seed=7, return_all=True)
    assert sorted(a[0]) == sorted(CANDS)
    # one candidate each: returned as is, no model call needed
    assert tiny.get_best_of_n(["x", "y"], [["a"], ["b"]]) == ["a", "b"]
    assert tiny.get_best_of_n(["x"], [["a"]], return_all=True) == [["a"]]


def test_llm_blender_gpt_eval_utils_values(tiny):
    """llm_blender.gpt_eval.utils (LLM-Blender's llm_blender/gpt_eval/utils.py): its two ranking helpers, on a
    comparison matrix worked out by hand and on the engine's own pairwise logits."""
    llm_blender_module()
    from llm_blender.gpt_eval import utils
    assert sorted(utils.__all__) == ["get_ranks_from_scores", "get_scores_from_cmps"]
    cmps = [[[0.0, 2.0, -1.0], [1.0, 0.0, 3.0], [0.5, -2.0, 0.0]]]  # a list, as llm-blender accepts
    # max_logits: mean over j of cmp[i][j] - cmp[j][i] (diagonal included): (0 + 1 - 1.5) / 3, (-1 + 0 + 5) / 3,
    # (1.5 - 5 + 0) / 3. float32 of values exact to the last bit of float64: equal after the same rounding.
    logits = utils.get_scores_from_cmps(cmps)
    assert logits.dtype == np.float32 and logits.shape == (1, 3)
    np.testing.assert_array_equal(logits, np.float32([[-1 / 6, 4 / 3, -7 / 6]]))
    # max_wins: the row's wins (cmp > 0) plus the share of losses in the column (cmp < 0): 1 + 0, 2 + 1/3, 1 + 1/3.
    wins = utils.get_scores_from_cmps(np.array(cmps), policy="max_wins")
    np.testing.assert_array_equal(wins, np.float32([[1, 7 / 3, 4 / 3]]))
    # Ranks: 1 = best; equal scores share the best of their places and the next place is skipped.
    one = utils.get_ranks_from_scores([0.5, 2.0, 0.5, -1.0])
    assert one.dtype == np.int32 and one.tolist() == [2, 1, 2, 4]
    assert utils.get_ranks_from_scores(np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 1.0]])).tolist() == [[1, 3, 2], [1, 1, 1]]
    assert utils.get_ranks_from_scores(logits).tolist() == [[2, 1, 3]]
    assert utils.get_ranks_from_scores(wins).tolist() == [[3, 1, 2]]
    # On the engine's pairwise logits: what Blender.rank returns (float32 rounding of the same mean).
    M = pairwise(tiny, SOURCE, CANDS)
    scores = utils.get_scores_from_cmps(M[None])
    np.testing.assert_allclose(scores, tiny.rank([SOURCE], [CANDS], return_scores=True), rtol=1e-6, atol=1e-7)
    assert np.diff(np.sort(scores[0])).min() > 1e-4  # far apart: the ranks cannot depend on that rounding
    np.testing.assert_array_equal(utils.get_ranks_from_scores(scores), tiny.rank([SOURCE], [CANDS]))


def test_judge_matches_pairwise_logits():
    judge = pairrm.PairRMJudge(model_dir("tiny"), threads=2, seed=3)
    prompts = [SOURCE, "hello!", "I love you!"]
    pairs = [[CANDS[0], CANDS[2]], ["hi!", "f**k off!"], ["I hate you!", "I love you, too!"]]
    blender = judge.blender
    gaps = [(lambda M: M[0, 1] - M[1, 0])(pairwise(blender, p, c)) for p, c in zip(prompts, pairs, strict=True)]
    for shuffle in (False, True):
        idx = judge.judge(prompts, pairs, shuffle_order=shuffle)
        assert idx == [0 if g > 0 else 1 for g in gaps]  # the caller's order, whatever the shuffle
        probs = judge.judge(prompts, pairs, shuffle_order=shuffle, return_scores=True, temperature=2.0)
        assert len(probs) == len(gaps) == 3
        for p, g in zip(probs, gaps, strict=True):
            assert isinstance(p, float)
            assert p == pytest.approx(1 / (1 + math.exp(-g / 2.0)), abs=1e-6)  # float32 scores
    assert judge.judge([], []) == []


def test_judge_shuffle_is_seedable(monkeypatch):
    calls = []
    j1 = pairrm.PairRMJudge(model_dir("tiny"), seed=11)
    j2 = pairrm.PairRMJudge(model_dir("tiny"), seed=11)
    orig = pairrm.Blender.rank

    def spy(self, prompts, completions, **kw):
        calls.append([list(c) for c in completions])
        return orig(self, prompts, completions, **kw)

    monkeypatch.setattr(pairrm.Blender, "rank", spy)
    pairs = [["a", "b"]] * 16
    j1.judge(["p"] * 16, pairs)
    j2.judge(["p"] * 16, pairs)
    assert calls[0] == calls[1]                       # same seed, same flips
    assert calls[0] != pairs and ["b", "a"] in calls[0]  # and it does flip some


def test_model_info_and_precisions():
    m = pairrm.Model(model_dir("tiny"))
    info = m.info
    assert info["layout"] == "pairrm-hf" and info["precision"] == "fp32" and info["num_layers"] > 0
    assert info["version"] == pairrm.__version__
    # fp32: the GEMM of each of the 4 dense-layer shapes (qkv, attention output, ffn in/out) and how it was chosen
    assert len(info["dense_gemms"]) == 4
    for g in info["dense_gemms"]:
        assert g["gemm"] in ("own", "onednn") and g["n"] > 0 and g["k"] > 0
        assert g["how"] in ("measured", "cached", "forced by PAIRRM_GEMM")
    bf16 = pairrm.Model(model_dir("tiny"), precision="bf16")
    assert bf16.info["precision"] == "bf16"
    rows = [m.build_row("hello!", "hi!", "f**k off!")]
    # bf16 GEMMs: within the bound the C++ precision tests measured for this model (0.07).
    assert abs(bf16.logits(rows)[0] - m.logits(rows)[0]) < 0.07
    # The attention's products in bf16 too (what "auto" picks on AMD Zen 4+): bound 0.11 from the same tests.
    forced = pairrm.Model(model_dir("tiny"), precision="bf16", attention="bf16")
    assert forced.info["attention_products"] == "bf16" and m.info["attention_products"] == "fp32"
    assert abs(forced.logits(rows)[0] - m.logits(rows)[0]) < 0.11
    with pytest.warns(UserWarning):
        pairrm.Blender().loadranker(model_dir("tiny"), device="cuda")
