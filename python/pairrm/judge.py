"""trl's ``PairRMJudge`` on the pairrm.cpp engine (no llm-blender, no PyTorch), and a PairRM reward function for
trl's GRPO-style trainers (trl >= 1.1 removed the judges)."""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from . import _checks
from .blender import Blender

DEFAULT_MODEL = "llm-blender/PairRM"  # what trl's PairRMJudge loads


class PairRMJudge:
    """trl's pairwise judge: ``judge(prompts, completions)`` -> the index of the preferred completion of each
    pair (0 or 1), or with ``return_scores=True`` the probability that the first is better,
    softmax(scores / temperature)[0] of the pair's PairRM rank scores = sigmoid((logit(1st over 2nd) -
    logit(2nd over 1st)) / temperature). Usable wherever trl <= 1.0 takes a ``BasePairwiseJudge`` (OnlineDPO,
    XPO, NashMD, WinRateCallback): they call ``judge`` only.

    Args:
        model: checkpoint directory or repo id; default ``$PAIRRM_MODEL``, else ``"llm-blender/PairRM"`` as trl
            loads it (llm-blender's download or the huggingface_hub cache; offline with ``HF_HUB_OFFLINE=1`` once
            cached).
        precision, threads: as ``pairrm.Model``. device: accepted as trl passes it (the CPU is used).
        seed: seeds the order shuffling (``shuffle_order=True``); None uses numpy's global RNG, as trl does.
        cache_dir: as ``Blender.loadranker``.
    """

    def __init__(self, model: Optional[str] = None, precision: str = "fp32", threads: int = 0,
                 seed: Optional[int] = None, device: Any = None, cache_dir: Optional[str] = None):
        model = model or os.environ.get("PAIRRM_MODEL") or DEFAULT_MODEL
        self.blender = Blender()
        self.blender.loadranker(model, device=device, cache_dir=cache_dir, precision=precision, threads=threads)
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def judge(self, prompts: Sequence[str], completions: Sequence[Sequence[str]], shuffle_order: bool = True,
              return_scores: bool = False, temperature: float = 1.0) -> List[Union[int, float]]:
        prompts = _checks.texts("prompts", prompts)
        completions = _checks.text_lists("completions", completions)
        _checks.same_length(prompts=prompts, completions=completions)
        for i, pair in enumerate(completions):
            if len(pair) != 2:
                raise ValueError(f"PairRM judge requires exactly 2 completions per prompt (completions[{i}] has "
                                 f"{len(pair)})")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, not {temperature!r}")
        if not prompts:
            return []
        # Shuffling averages out the position bias over many calls; the answer always refers to the
        # caller's order.
        if shuffle_order:
            rng = self._rng if self._rng is not None else np.random
            flip = rng.choice([True, False], size=len(prompts))
        else:
            flip = np.zeros(len(prompts), dtype=bool)
        ordered = [pair[::-1] if f else pair for f, pair in zip(flip, completions)]
        if return_scores:
            scores = self.blender.rank(prompts, ordered, return_scores=True, disable_tqdm=True).astype(np.float64)
            scores /= temperature
            scores[flip] = scores[flip][:, ::-1]
            shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))  # softmax of two = sigmoid of the gap
            return (shifted[:, 0] / shifted.sum(axis=-1)).tolist()
        ranks = self.blender.rank(prompts, ordered, disable_tqdm=True) - 1
        ranks[flip] = ranks[flip][:, ::-1]
        return ranks[:, 0].tolist()


def _text(value: Any, role: str) -> str:
    """A trl prompt or completion as text: a string as is; conversational messages (``[{"role", "content"}]``)
    as the content of a single message, else as trl renders them for its judges ("Role: content\\n\\n")."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(m, dict) and "content" in m for m in value):
        if len(value) == 1:
            return _checks.text(role, value[0]["content"])
        return "".join(f"{str(m.get('role', 'user')).capitalize()}: {m['content']}\n\n" for m in value)
    raise TypeError(f"{role} must be a str or a list of {{'role', 'content'}} messages, not {type(value).__name__}")


def reward_function(model: Optional[str] = None, *, reference_column: Optional[str] = "reference",
                    baseline: Optional[str] = "group", blender: Optional[Blender] = None,
                    name: str = "pairrm_reward", **load_kwargs: Any) -> Callable[..., List[float]]:
    """A reward function for trl's GRPO-style trainers (``reward_funcs=[pairrm.reward_function()]``):
    ``reward(prompts, completions, **columns) -> list[float]``, one float per completion (higher is better).

    - When the batch has the dataset column ``reference_column`` (one reference answer per completion):
      reward = logit(completion over reference) - logit(reference over completion), PairRM's "[A,B]+[B,A]"
      comparison; > 0 means better than the reference.
    - Otherwise, with ``baseline="group"``: the completions of the same prompt (GRPO's group) are ranked
      together and each gets its PairRM rank score, the mean logit difference against the group (a lone
      completion gets 0.0). ``baseline=None`` makes a missing column an error.

    Prompts and completions may be conversational (lists of messages). ``model`` / ``load_kwargs`` as
    ``PairRMJudge`` (default ``$PAIRRM_MODEL``, else "llm-blender/PairRM"); or pass a loaded ``blender``.
    """
    if baseline not in ("group", None):
        raise ValueError(f"baseline must be 'group' or None, not {baseline!r}")
    if blender is None:
        blender = Blender()
        blender.loadranker(model or os.environ.get("PAIRRM_MODEL") or DEFAULT_MODEL, **load_kwargs)

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> List[float]:
        sources = [_text(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        answers = [_text(c, f"completions[{i}]") for i, c in enumerate(completions)]
        _checks.same_length(prompts=sources, completions=answers)
        if reference_column is not None and columns.get(reference_column) is not None:
            refs = [_text(r, f"{reference_column}[{i}]") for i, r in enumerate(columns[reference_column])]
            _checks.same_length(completions=answers, **{reference_column: refs})
            return blender.compare(sources, answers, refs, return_logits=True).astype(float).tolist()
        if baseline is None:
            raise KeyError(f"the batch has no {reference_column!r} column (and baseline=None)")
        return _group_scores(blender, sources, answers)

    reward.__name__ = reward.__qualname__ = name  # trl logs rewards under the function's name
    return reward


def _group_scores(blender: Blender, sources: List[str], answers: List[str]) -> List[float]:
    groups: "OrderedDict[str, List[int]]" = OrderedDict()
    for i, s in enumerate(sources):
        groups.setdefault(s, []).append(i)
    keys = list(groups)
    scores = blender.rank(keys, [[answers[i] for i in groups[k]] for k in keys], return_scores=True)
    out = [0.0] * len(answers)
    for k, row in zip(keys, scores):
        for i, s in zip(groups[k], row):
            out[i] = float(s)
    return out
