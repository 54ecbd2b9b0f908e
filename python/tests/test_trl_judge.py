"""trl's PairRMJudge as trl and its users call it: `PairRMJudge()` with no arguments from a filled hub cache with
HF_HUB_OFFLINE=1, trl's own judge body written against `import llm_blender`, the trainers' call patterns, and the
GRPO reward function; numbers against text_cases.json (compare_modes: the "[A,B]+[B,A]" logits of pair rows)."""
import math

import numpy as np
import pytest

import pairrm
from conftest import link_checkpoint, logit_tolerance, model_dir, require_torch, run_snippet

TORCH = [pytest.param(False, id="without-torch"), pytest.param(True, id="with-torch")]


def pairs_of(text_cases):
    rows, modes = text_cases["pair_rows"], text_cases["models"]["tiny"]["compare_modes"]
    assert len(modes) >= 2
    prompts = [rows[m["row"]]["source"] for m in modes]
    pairs = [[rows[m["row"]]["candidate1"], rows[m["row"]]["candidate2"]] for m in modes]
    return prompts, pairs, [m["default"] for m in modes]


def check_judgement(got, gaps, temperature):
    assert got["indices"] == [0 if g > 0 else 1 for g in gaps]  # the caller's order, whatever the shuffle
    for p, g in zip(got["probs"], gaps, strict=True):
        # softmax of the pair's two rank scores = sigmoid(gap / T); the gap is within 2 logit tolerances.
        want = 1 / (1 + math.exp(-g / temperature))
        assert abs(p - want) <= 2 * logit_tolerance(g) / (4 * temperature) + 1e-6  # sigmoid' <= 1/4


JUDGE_NO_ARGS = """
import numpy as np
import pairrm
np.random.seed(0)
judge = pairrm.PairRMJudge()
prompts, pairs = {prompts!r}, {pairs!r}
indices = judge.judge(prompts, pairs)
probs = judge.judge(prompts, pairs, return_scores=True, temperature=0.5)
report(indices=indices, probs=probs, path=judge.blender.ranker_config.load_checkpoint,
       types=[type(indices[0]).__name__, type(probs[0]).__name__])
"""


@pytest.mark.parametrize("torch", TORCH)
def test_pairrm_judge_with_no_arguments_offline(text_cases, hub_cache, torch):
    if torch:
        require_torch()
    prompts, pairs, gaps = pairs_of(text_cases)
    got = run_snippet(JUDGE_NO_ARGS.format(prompts=prompts, pairs=pairs), torch=torch, hub=hub_cache)
    assert "models--llm-blender--PairRM/snapshots" in got["path"]
    assert got["types"] == ["int", "float"]
    check_judgement(got, gaps, 0.5)


# trl's PairRMJudge (trl/trainer/judges.py up to trl 1.0) as a user copies it, against `import llm_blender`.
TRL_JUDGE_BODY = """
import numpy as np
import llm_blender
{device}

class PairRMJudge:
    def __init__(self):
        self.blender = llm_blender.Blender()
        self.blender.loadranker("llm-blender/PairRM", device=device)

    def judge(self, prompts, completions, shuffle_order=True, return_scores=False, temperature=1.0):
        if len(completions[0]) != 2:
            raise ValueError("PairRM judge requires exactly 2 completions per prompt.")
        if shuffle_order:
            flip_mask = np.random.choice([True, False], size=len(prompts))
            completions = [pair[::-1] if flip else pair for flip, pair in zip(flip_mask, completions)]
        ranks = self.blender.rank(prompts, completions, return_scores=return_scores, disable_tqdm=True)
        if not return_scores:
            ranks -= 1
        else:
            ranks /= temperature
        if shuffle_order:
            ranks[flip_mask] = ranks[flip_mask][:, ::-1]
        if return_scores:
            logit_max = np.amax(ranks, axis=-1, keepdims=True)
            exp_logit_shifted = np.exp(ranks - logit_max)
            probs = exp_logit_shifted / np.sum(exp_logit_shifted, axis=-1, keepdims=True)
            return probs[:, 0].tolist()
        else:
            return ranks[:, 0].tolist()

np.random.seed(1)
judge = PairRMJudge()
prompts, pairs = {prompts!r}, {pairs!r}
indices = judge.judge(prompts, pairs)
probs = judge.judge(prompts, [tuple(p) for p in pairs], True, return_scores=True, temperature=2.0)
report(indices=indices, probs=probs)
"""


@pytest.mark.parametrize("torch", TORCH)
def test_trl_judge_body_runs_on_llm_blender(text_cases, hub_cache, torch):
    if torch:
        require_torch()
    prompts, pairs, gaps = pairs_of(text_cases)
    # Accelerator().device is a torch.device; without torch, trl users would pass a string.
    device = "import torch\ndevice = torch.device('cpu')" if torch else "device = 'cpu'"
    got = run_snippet(TRL_JUDGE_BODY.format(device=device, prompts=prompts, pairs=pairs), torch=torch, hub=hub_cache)
    check_judgement(got, gaps, 2.0)


def test_cuda_devices_warn_and_run(hub_cache):
    require_torch()
    got = run_snippet("""
        import torch, llm_blender
        b = llm_blender.Blender()
        b.loadranker("llm-blender/PairRM", device=torch.device("cuda", 0))
        b.loadranker("llm-blender/PairRM", device="cuda")
        report(ok=b.compare(["hello!"], ["hi!"], ["f**k off!"]).tolist(), device=b.ranker_config.device)
    """, torch=True, hub=hub_cache)
    assert got["ok"] == [False] and got["device"] == "cuda"
    assert got["_stderr"].count("is ignored") == 2


def test_llm_blender_download_dir_and_cache_dir(text_cases, tmp_path, hub_cache):
    """An existing llm-blender download (a plain directory <cache_dir>/llm-blender/PairRM) is used as is, from
    TRANSFORMERS_CACHE (llm-blender's default cache_dir) or from cache_dir=."""
    plain = link_checkpoint(__import__("pathlib").Path(model_dir("tiny")), tmp_path / "tc" / "llm-blender" / "PairRM")
    got = run_snippet("""
        import llm_blender
        a = llm_blender.Blender(); a.loadranker("llm-blender/PairRM")
        b = llm_blender.Blender(); b.loadranker("llm-blender/PairRM", cache_dir={cache!r})
        c = llm_blender.Blender(); c.loadranker("llm-blender/PairRM-hf", cache_dir={hub!r})
        report(a=a.ranker_config.load_checkpoint, b=b.ranker_config.load_checkpoint, c=c.ranker_config.load_checkpoint,
               logit=b.compare(["hello!"], ["hi!"], ["f**k off!"], mode="[A,B]", return_logits=True).tolist())
    """.format(cache=str(tmp_path / "tc"), hub=str(hub_cache)), torch=False, hub=tmp_path / "empty",
        extra_env={"TRANSFORMERS_CACHE": str(tmp_path / "tc")})
    assert got["a"] == got["b"] == str(plain)
    assert "models--llm-blender--PairRM-hf/snapshots" in got["c"]
    want = text_cases["models"]["tiny"]["compare_ab"][0]["logit_f64"]
    assert abs(got["logit"][0] - want) <= logit_tolerance(want)


def test_trainer_call_patterns(text_cases):
    """What OnlineDPO / XPO / NashMD / WinRateCallback pass: tuples from zip, shuffle_order positionally."""
    prompts, pairs, gaps = pairs_of(text_cases)
    judge = pairrm.PairRMJudge(model_dir("tiny"), threads=2, seed=5)
    completions = list(zip([p[0] for p in pairs], [p[1] for p in pairs], strict=True))
    ranks = judge.judge(prompts, completions)  # OnlineDPO / XPO
    assert ranks == [0 if g > 0 else 1 for g in gaps]
    probs = judge.judge(prompts, completions, True, return_scores=True)  # WinRateCallback
    nash = judge.judge(prompts, completions, return_scores=True)  # NashMD
    for p, q, g in zip(probs, nash, gaps, strict=True):
        assert abs(p - 1 / (1 + math.exp(-g))) <= 2 * logit_tolerance(g) / 4 + 1e-6 and p == pytest.approx(q)
    with pytest.raises(ValueError, match="exactly 2 completions"):
        judge.judge(["p"], [("a", "b", "c")])


def test_reward_function_against_a_reference_and_per_group(text_cases):
    prompts, pairs, gaps = pairs_of(text_cases)
    reward = pairrm.reward_function(model_dir("tiny"), threads=2)
    assert reward.__name__ == "pairrm_reward"
    # Against the dataset's reference column: logit(completion, ref) - logit(ref, completion).
    got = reward(prompts=prompts, completions=[p[0] for p in pairs], reference=[p[1] for p in pairs],
                 completion_ids=None, trainer_state=None)
    assert isinstance(got, list) and all(isinstance(x, float) for x in got) and len(got) == len(gaps)
    for g, want in zip(got, gaps, strict=True):
        assert abs(g - want) <= 2 * logit_tolerance(want)
    # Conversational prompts and completions give the same numbers.
    conv = reward(prompts=[[{"role": "user", "content": p}] for p in prompts],
                  completions=[[{"role": "assistant", "content": p[0]}] for p in pairs],
                  reference=[p[1] for p in pairs])
    assert conv == got
    # No reference column: GRPO's groups (same prompt, interleaved here) get their PairRM rank scores.
    cases = [c for c in text_cases["models"]["tiny"]["rank_cases"] if len(c["candidates"]) > 2][:2]
    assert len(cases) == 2
    order = [(k, j) for j in range(5) for k in range(2) if j < len(cases[k]["candidates"])]
    scores = reward(prompts=[cases[k]["source"] for k, _ in order],
                    completions=[cases[k]["candidates"][j] for k, j in order])
    assert len(order) == sum(len(c["candidates"]) for c in cases)
    for s, (k, j) in zip(scores, order, strict=True):
        want = cases[k]["scores"][j]
        assert abs(s - want) <= 2 * logit_tolerance(max(abs(x) for x in np.ravel(cases[k]["M"])))
    assert reward(prompts=["lonely"], completions=["alone"]) == [0.0]
    strict = pairrm.reward_function(blender=reward_blender(), baseline=None)
    with pytest.raises(KeyError, match="reference"):
        strict(prompts=["p"], completions=["c"])


def reward_blender():
    b = pairrm.Blender()
    b.loadranker(model_dir("tiny"), threads=2)
    return b
