"""llm_blender.Blender's public API, argument for argument (llm-blender commit 2a67366,
llm_blender/blender/blender.py), and the return types and assertion behaviour its callers rely on."""
import inspect

import numpy as np
import pytest

import pairrm
from conftest import llm_blender_module, model_dir

E = inspect.Parameter.empty
# (name, default) in order, then whether **kwargs follows: copied from llm-blender's signatures.
LLM_BLENDER = {
    "__init__": ([("blender_config", None), ("ranker_config", None), ("fuser_config", None)], False),
    "loadranker": ([("ranker_path", E), ("device", None)], True),
    "loadfuser": ([("fuser_path", E), ("device", None)], True),
    "rank": ([("inputs", E), ("candidates", E), ("instructions", None), ("return_scores", False), ("batch_size", 8),
              ("disable_tqdm", False)], True),
    "rank_with_ref": ([("inputs", E), ("candidates", E), ("instructions", None), ("return_scores", False),
                       ("batch_size", 8), ("ref_mode", "longest"), ("ref_candidates", None)], True),
    "compare_conversations": ([("conversations_a", E), ("conversations_b", E), ("batch_size", 4),
                               ("return_logits", False), ("mode", "[A,B]+[B,A]")], False),
    "get_best_of_n": ([("inputs", E), ("candidates", E), ("instructions", None), ("pairrm_cmp_type", "bubble"),
                       ("return_all", False), ("batch_size", 8)], False),
    "get_worst_of_n": ([("inputs", E), ("candidates", E), ("instructions", None), ("pairrm_cmp_type", "bubble"),
                        ("return_all", False), ("batch_size", 8)], False),
    "compare": ([("inputs", E), ("candidates_A", E), ("candidates_B", E), ("instructions", None), ("batch_size", 4),
                 ("return_logits", False), ("mode", "[A,B]+[B,A]"), ("disable_tqdm", False)], False),
    "fuse": ([("inputs", E), ("candidates", E), ("instructions", None), ("batch_size", 4)], True),
    "n_generate": ([("model", E), ("model_tokenizer", E), ("inputs", E), ("instructions", None), ("n", 5),
                    ("sampling_mode", "top_p_sampling"), ("batch_size", 4)], True),
    "best_of_n_generate": ([("model", E), ("model_tokenizer", E), ("inputs", E), ("instructions", None), ("n", 5),
                            ("sampling_mode", "top_p_sampling"), ("batch_size", 4), ("pairrm_cmp_type", "bubble"),
                            ("return_all", False)], True),
    "rank_and_fuse": ([("inputs", E), ("candidates", E), ("instructions", None), ("return_scores", False),
                       ("batch_size", 4), ("top_k", 3)], True),
}


@pytest.mark.parametrize("name", sorted(LLM_BLENDER))
def test_signature_matches_llm_blender(name):
    params, var_kw = LLM_BLENDER[name]
    for cls in (pairrm.Blender, llm_blender_module().Blender):
        sig = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]  # without self
        positional = [p for p in sig if p.kind == p.POSITIONAL_OR_KEYWORD]
        assert [(p.name, p.default) for p in positional[:len(params)]] == params
        assert all(p.default is not E for p in positional[len(params):])  # additions only at the end, optional
        assert any(p.kind == p.VAR_KEYWORD for p in sig) == var_kw
    public = {n for n in dir(pairrm.Blender) if not n.startswith("_")} | {"__init__"}
    assert public == set(LLM_BLENDER)


def test_configs_and_construction():
    cfg = pairrm.RankerConfig(load_checkpoint=model_dir("tiny"), source_maxlength=128)
    b = pairrm.Blender(ranker_config=cfg)  # llm-blender loads the ranker from ranker_config
    assert b.ranker_config.source_maxlength == 128 and b.ranker_config.candidate_maxlength == 412
    assert pairrm.RankerConfig.from_dict({"ranker_type": "pairranker", "unknown": 1}).ranker_type == "pairranker"
    assert pairrm.BlenderConfig().to_dict() == {"device": "cuda", "use_tqdm": True}
    with pytest.raises(NotImplementedError, match="generative fuser"):
        pairrm.Blender(fuser_config=pairrm.GenFuserConfig())


def llm_blender_ranks(scores):
    """llm-blender's get_ranks_from_scores, as written there."""
    ranks = np.zeros(scores.shape, dtype=np.int32)
    for i in range(scores.shape[0]):
        s = list(sorted(list(scores[i]), reverse=True))
        for j in range(scores.shape[1]):
            ranks[i, j] = s.index(scores[i, j]) + 1
    return ranks


def test_rank_helpers_match_llm_blender():
    from pairrm.ranks import get_ranks_from_scores, get_scores_from_cmps
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(20, 6)).astype(np.float32)  # many ties
    np.testing.assert_array_equal(get_ranks_from_scores(scores), llm_blender_ranks(scores))
    assert get_ranks_from_scores(scores[0]).shape == (6,)
    cmps = rng.normal(size=(2, 4, 4))
    got = get_scores_from_cmps(cmps)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[1], (cmps[1] - cmps[1].T).mean(axis=-1), rtol=1e-6)
    top = pairrm.get_topk_candidates_from_ranks([[2, 1, 3]], [["a", "b", "c"]], top_k=2)
    assert isinstance(top, np.ndarray) and top.tolist() == [["b", "a"]]


def test_return_types_as_llm_blender(tiny):
    inputs, cands = ["hello, how are you!"], [["get out!", "hi! I am fine, thanks!", "bye!"]]
    bubble = tiny.get_best_of_n(inputs, cands, return_all=True)
    assert isinstance(bubble, list) and isinstance(bubble[0], list) and sorted(bubble[0]) == sorted(cands[0])
    full = tiny.get_best_of_n(inputs, cands, pairrm_cmp_type="full", return_all=True)
    assert isinstance(full, np.ndarray) and full.shape == (1, 3)
    assert tiny.get_worst_of_n(inputs, cands, pairrm_cmp_type="full", return_all=True)[0].tolist() == \
        full[0][::-1].tolist()
    single = [["only"]]
    assert tiny.get_best_of_n(["x"], single, return_all=True) is single  # returned as given
    assert tiny.rank_with_ref(inputs, cands, return_scores=True).dtype == np.float64
    assert tiny.rank(inputs, cands, return_scores=True).dtype == np.float32
    assert tiny.compare(inputs, ["a"], ["b"], return_logits=True).dtype == np.float32
    # "[A,B]"/"[B,A]" through rank_with_ref's **rank_kwargs, as llm-blender hands them to compare().
    ab = tiny.rank_with_ref(inputs, cands, return_scores=True, mode="[A,B]")
    ref = max(cands[0], key=len)
    np.testing.assert_allclose(ab[0], -tiny.compare(inputs * 3, [ref] * 3, cands[0], mode="[A,B]", return_logits=True),
                               rtol=0, atol=1e-6)  # float64 vs float32 of the same logits


def test_llm_blender_asserts_are_still_assertion_errors(tiny):
    with pytest.raises(AssertionError):
        tiny.rank(["a", "b"], [["x", "y"]])
    with pytest.raises(AssertionError):
        tiny.rank(["a"], [[]])
    with pytest.raises(AssertionError):
        tiny.compare(["a"], ["x", "y"], ["z"])
    bad = [{"role": "USER", "content": "hi"}]  # odd number of turns
    with pytest.raises(AssertionError):
        tiny.compare_conversations([bad], [bad])
    with pytest.raises(AssertionError):
        tiny.compare_conversations([bad + bad], [bad])
