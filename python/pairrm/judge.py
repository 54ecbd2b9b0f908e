"""trl's ``PairRMJudge`` on the pairrm.cpp engine (no llm-blender, no PyTorch)."""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Union

import numpy as np

from . import _checks
from .blender import Blender


class PairRMJudge:
    """Pairwise judge with trl's interface: ``judge(prompts, completions)`` -> index of the preferred
    completion of each pair (0 or 1), or with ``return_scores=True`` the probability that the first is
    better, sigmoid((M01 - M10) / temperature) where M01 = logit(first over second).

    Args:
        model: checkpoint directory; default ``$PAIRRM_MODEL``.
        precision, threads: as ``pairrm.Model``.
        seed: seeds the order shuffling (``shuffle_order=True``); None uses numpy's global RNG, as trl does.
    """

    def __init__(self, model: Optional[str] = None, precision: str = "fp32", threads: int = 0,
                 seed: Optional[int] = None):
        model = model or os.environ.get("PAIRRM_MODEL")
        if not model:
            raise ValueError("PairRMJudge needs a model directory: pass model=... or set PAIRRM_MODEL")
        self.blender = Blender()
        self.blender.loadranker(model, precision=precision, threads=threads)
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
            scores = self.blender.rank(prompts, ordered, return_scores=True).astype(np.float64) / temperature
            scores[flip] = scores[flip][:, ::-1]
            shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))  # softmax of two = sigmoid of the gap
            return (shifted[:, 0] / shifted.sum(axis=-1)).tolist()
        ranks = self.blender.rank(prompts, ordered) - 1
        ranks[flip] = ranks[flip][:, ::-1]
        return ranks[:, 0].tolist()
