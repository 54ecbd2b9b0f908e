"""llm-blender's README snippets and the PairRM-hf model card's, written as their users write them (`import
llm_blender`, `loadranker("llm-blender/PairRM")`), run in a fresh interpreter with and without PyTorch importable,
offline against a hub cache holding the tiny fixture model; the numbers are checked against text_cases.json."""
import numpy as np
import pytest

from conftest import logit_tolerance, require_torch, run_snippet

TORCH = [pytest.param(False, id="without-torch"), pytest.param(True, id="with-torch")]


def maybe_torch(torch):
    if torch:
        require_torch()


README_RANK_COMPARE = """
import llm_blender
blender = llm_blender.Blender()
blender.loadranker("llm-blender/PairRM") # load ranker checkpoint

inputs = ["hello, how are you!", "I love you!"]
candidates_texts = [["get out!", "hi! I am fine, thanks!", "bye!"],
                    ["I love you too!", "I hate you!", "Thanks! You're a good guy!"]]
ranks = blender.rank(inputs, candidates_texts, return_scores=False, batch_size=1)
scores = blender.rank(inputs, candidates_texts, return_scores=True, batch_size=1)

from llm_blender.blender.blender_utils import get_topk_candidates_from_ranks
topk_candidates = get_topk_candidates_from_ranks(ranks, candidates_texts, top_k=3)

inputs = ["hello!", "I love you!"]
candidates_A = ["hi!", "I hate you!"]
candidates_B = ["f**k off!", "I love you, too!"]
comparison_results = blender.compare(inputs, candidates_A, candidates_B)
logits = blender.compare(inputs, candidates_A, candidates_B, return_logits=True, disable_tqdm=True)

report(ranks=ranks.tolist(), ranks_type=type(ranks).__name__, ranks_dtype=str(ranks.dtype),
       scores=scores.tolist(), scores_dtype=str(scores.dtype), topk=topk_candidates.tolist(),
       topk_type=type(topk_candidates).__name__, comparison=comparison_results.tolist(),
       comparison_dtype=str(comparison_results.dtype), logits=logits.tolist(), logits_dtype=str(logits.dtype),
       torch_loaded="torch" in sys.modules and sys.modules["torch"] is not None)
"""


@pytest.mark.parametrize("torch", TORCH)
def test_readme_rank_compare_and_topk(text_cases, hub_cache, torch):
    maybe_torch(torch)
    got = run_snippet(README_RANK_COMPARE, torch=torch, hub=hub_cache)
    cases = text_cases["models"]["tiny"]["rank_cases"][:2]  # the README's two inputs
    assert [c["source"] for c in cases] == ["hello, how are you!", "I love you!"]
    assert got["ranks"] == [c["ranks"] for c in cases]
    assert (got["ranks_type"], got["ranks_dtype"]) == ("ndarray", "int32")
    assert got["scores_dtype"] == "float32"
    # A score is a mean of logit differences, each within 2 * the logit tolerance (~2.2e-4 here).
    assert len(cases) == 2
    for row, c in zip(got["scores"], cases, strict=True):
        for g, w in zip(row, c["scores"], strict=True):
            assert abs(g - w) <= 2 * logit_tolerance(max(abs(x) for x in np.ravel(c["M"])))
    assert got["topk_type"] == "ndarray"
    assert got["topk"] == [[c["candidates"][i] for i in np.argsort(c["ranks"])] for c in cases]
    modes = text_cases["models"]["tiny"]["compare_modes"][:2]  # pair rows 0 and 1: the README's comparison
    assert got["comparison"] == [m["better_default"] for m in modes] and got["comparison_dtype"] == "bool"
    assert got["logits_dtype"] == "float32"
    for g, m in zip(got["logits"], modes, strict=True):
        assert abs(g - m["default"]) <= 2 * logit_tolerance(m["default"])  # float32 difference of two logits
    assert got["torch_loaded"] is False  # llm_blender never imports torch itself


README_REWARDS = """
import llm_blender
blender = llm_blender.Blender()
blender.loadranker("llm-blender/PairRM") # load ranker checkpoint

inputs = ["hello, how are you!", "I love you!"]
candidates_texts = [["get out!", "hi! I am fine, thanks!", "bye!"],
    ["I love you too!", "I hate you!", "Thanks! You're a good guy!"]]
rewards = blender.rank_with_ref(inputs, candidates_texts, return_scores=True, batch_size=2, mode="longest")

ref_candidates = [_c[0] for _c in candidates_texts] # use the first candidate as the reference, same as mode="first"
rewards_ref = blender.rank_with_ref(inputs, candidates_texts, return_scores=True, batch_size=2, ref_candidates=ref_candidates)
ranks = blender.rank_with_ref(inputs, candidates_texts)
first = blender.rank_with_ref(inputs, candidates_texts, return_scores=True, ref_mode="first")
report(rewards=rewards.tolist(), dtype=str(rewards.dtype), shape=list(rewards.shape), rewards_ref=rewards_ref.tolist(),
       ranks=ranks.tolist(), ranks_dtype=str(ranks.dtype), first=first.tolist())
"""


@pytest.mark.parametrize("torch", TORCH)
def test_readme_rank_with_ref_both_ways(text_cases, hub_cache, torch):
    maybe_torch(torch)
    got = run_snippet(README_REWARDS, torch=torch, hub=hub_cache)
    cases = text_cases["models"]["tiny"]["rank_cases"][:2]
    assert got["dtype"] == "float64" and got["shape"] == [2, 3]  # llm-blender's np.zeros logits
    assert got["ranks"] == [c["rank_with_ref_longest"]["ranks"] for c in cases] and got["ranks_dtype"] == "int32"
    assert len(cases) == 2
    for row, c in zip(got["rewards"], cases, strict=True):
        want = c["rank_with_ref_longest"]["scores"]
        for g, w in zip(row, want, strict=True):
            assert abs(g - w) <= 2 * logit_tolerance(w)  # a difference of two logits, float64 here
    # ref_candidates = the first candidates: score(c_j) = -(M[0][j] - M[j][0]) from the reference's matrix.
    for row, c in zip(got["rewards_ref"], cases, strict=True):
        M = np.array(c["M"])
        assert len(row) == len(c["candidates"]) == len(M)
        for j, g in enumerate(row):
            assert abs(g - -(M[0, j] - M[j, 0])) <= 2 * logit_tolerance(M[0, j] - M[j, 0])
    assert got["first"] == got["rewards_ref"]  # the same computation, bitwise


CARD = """
import numpy as np
{imports}
from llm_blender.pair_ranker.pairrm import DebertaV2PairRM
pairrm = DebertaV2PairRM.from_pretrained("llm-blender/PairRM-hf", device_map="cuda:0").eval()
# The card's tokenize_pair() output for its two examples, with the fixture's token ids (no transformers here),
# padded to max_length = 1224 + 2 * 412 as tokenizer.pad(padding="max_length") does.
rows = {rows!r}
max_length = 2048
input_ids = [r + [0] * (max_length - len(r)) for r in rows]
attention_mask = [[1] * len(r) + [0] * (max_length - len(r)) for r in rows]
encodings = {{"input_ids": {array}(input_ids), "attention_mask": {array}(attention_mask)}}
{to_device}
outputs = pairrm(**encodings)
logits = outputs.logits.tolist()
comparison_results = outputs.logits > 0
report(logits=logits, logits_type=type(outputs.logits).__module__ + "." + type(outputs.logits).__name__,
       comparison=[bool(x) for x in comparison_results], comparison_type=type(comparison_results).__name__,
       by_key=outputs["logits"].tolist() == logits, device=str(pairrm.device))
"""


@pytest.mark.parametrize("torch", TORCH)
def test_model_card_snippet_with_its_token_ids(text_cases, hub_cache, torch):
    maybe_torch(torch)
    rows = text_cases["pair_rows"]
    code = CARD.format(imports="import torch" if torch else "", rows=[r["input_ids"] for r in rows],
                       array="torch.tensor" if torch else "np.array",
                       to_device="encodings = {k:v.to(pairrm.device) for k,v in encodings.items()}" if torch else "")
    got = run_snippet(code, torch=torch, hub=hub_cache)
    assert "device='cuda:0' is ignored" in got["_stderr"]  # a warning, not an error
    assert got["logits_type"] == ("torch.Tensor" if torch else "numpy.ndarray")
    assert got["comparison_type"] == ("Tensor" if torch else "ndarray") and got["by_key"]
    assert got["device"] == "cpu"
    expected = text_cases["models"]["tiny"]["compare_ab"]
    assert [e["row"] for e in expected] == list(range(len(rows)))
    assert len(got["logits"]) == len(rows) == 12
    for g, e in zip(got["logits"], expected, strict=True):
        assert abs(g - e["logit_f64"]) <= logit_tolerance(e["logit_f64"])
    assert got["comparison"] == [e["logit_f64"] > 0 for e in expected]
