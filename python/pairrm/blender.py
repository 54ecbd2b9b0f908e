"""llm-blender's ``Blender`` ranker API on the pairrm.cpp engine.

Same method names, argument names, defaults and return types as ``llm_blender.Blender`` for PairRM:
ranks are int32 arrays (1 = best), scores float32 arrays, comparisons bool arrays (or float32 logits).
Differences, all additive: candidate lists may differ in length between inputs (then a list of 1-D arrays
is returned instead of one 2-D array); best/worst-of-n "bubble" visits the candidates in their given order
unless a ``seed`` is passed (llm-blender draws the order from torch's global RNG); ``precision`` and
``threads`` options. ``batch_size`` is accepted and checked but never changes a result: the engine
schedules rows itself and every row is computed alone.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _checks
from .model import COMPARE_MODES, Model

_REF_MODES = ("longest", "shortest", "median_length", "first", "last")
# RankerConfig fields llm-blender accepts in loadranker(**kwargs) that cannot change our numbers.
_IGNORED_RANKER_KWARGS = {"cache_dir", "load_checkpoint", "fp16", "model_name", "model_type", "ranker_type",
                          "n_tasks", "device"}


def _stack(arrays: List[np.ndarray]) -> Union[np.ndarray, List[np.ndarray]]:
    """One 2-D array when every input had the same number of candidates, else a list of 1-D arrays."""
    if arrays and all(len(a) == len(arrays[0]) for a in arrays):
        return np.stack(arrays)
    return arrays


class Blender:
    """``llm_blender.Blender`` for the PairRM ranker. ``Blender()`` then ``loadranker(path)``."""

    def __init__(self, blender_config: Any = None, ranker_config: Any = None, fuser_config: Any = None):
        if fuser_config is not None:
            raise NotImplementedError("pairrm has no GenFuser: only the ranker API is provided")
        self.blender_config = blender_config
        self.ranker: Optional[Model] = None
        if ranker_config is not None:
            path = getattr(ranker_config, "load_checkpoint", None) or ranker_config
            self.loadranker(path)

    # -- loading --------------------------------------------------------------------------------------------

    def loadranker(self, ranker_path: "os.PathLike[str] | str", device: Optional[str] = None, precision: str = "fp32",
                   threads: int = 0, special_tokens: str = "literal", byte_fallback: bool = False,
                   **kwargs: Any) -> None:
        """Loads a PairRM checkpoint directory (``llm-blender/PairRM-hf`` or the original ``PairRM`` layout).

        ``device``: None or "cpu"; "cuda"/"mps" run on the CPU with a warning (the numbers are the same).
        ``precision``: "fp32" (exact), "bf16", "int8". ``threads``: 0 = all cores.
        """
        if device not in (None, "cpu") and not str(device).startswith(("cuda", "mps")):
            raise ValueError(f"device must be 'cpu' (or None), not {device!r}")
        if device not in (None, "cpu"):
            warnings.warn(f"pairrm runs on the CPU; device={device!r} is ignored", stacklevel=2)
        for k in kwargs:
            if k in ("source_maxlength", "candidate_maxlength"):
                raise NotImplementedError(f"{k}: pairrm uses the checkpoint's own truncation limits")
            if k not in _IGNORED_RANKER_KWARGS:
                raise TypeError(f"loadranker() got an unexpected keyword argument {k!r}")
        self.ranker = Model(ranker_path, precision=precision, threads=threads, special_tokens=special_tokens,
                            byte_fallback=byte_fallback)

    def _model(self) -> Model:
        if self.ranker is None:
            raise RuntimeError("no ranker loaded: call loadranker(path) first")
        return self.ranker

    @staticmethod
    def _rank_kwargs(batch_size: int, rank_kwargs: Dict[str, Any]) -> None:
        _checks.positive_int("batch_size", batch_size)
        for k, v in rank_kwargs.items():
            if k == "disable_tqdm":
                continue
            if k in ("source_max_length", "candidate_max_length"):
                if v is not None:
                    raise NotImplementedError(f"{k}: pairrm uses the checkpoint's own truncation limits")
                continue
            raise TypeError(f"unexpected keyword argument {k!r}")

    def _inputs(self, inputs: Sequence[str], candidates: Any, instructions: Optional[Sequence[str]]):
        inputs = _checks.texts("inputs", inputs)
        candidates = _checks.text_lists("candidates", candidates)
        _checks.same_length(inputs=inputs, candidates=candidates)
        return _checks.with_instructions(inputs, instructions), candidates

    # -- the API --------------------------------------------------------------------------------------------

    def rank(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]], instructions: Optional[Sequence[str]] = None,
             return_scores: bool = False, batch_size: int = 8, **rank_kwargs: Any):
        """Ranks of the candidates of each input (int32, 1 = best, ties share the smallest rank), or with
        ``return_scores=True`` their float32 scores (higher is better): score[k] = mean over j of
        logit(k over j) - logit(j over k)."""
        self._rank_kwargs(batch_size, rank_kwargs)
        sources, candidates = self._inputs(inputs, candidates, instructions)
        results = self._model()._engine.rank(sources, candidates)
        if return_scores:
            return _stack([s.astype(np.float32) for s, _ in results])
        return _stack([r for _, r in results])

    def rank_with_ref(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                      instructions: Optional[Sequence[str]] = None, return_scores: bool = False, batch_size: int = 8,
                      ref_mode: str = "longest", ref_candidates: Optional[Sequence[str]] = None, **rank_kwargs: Any):
        """Ranks (or scores) against one reference candidate per input: score(c) = -(logit(ref, c) -
        logit(c, ref)). The reference is chosen by ``ref_mode`` (longest, shortest, median_length, first,
        last: by character length) unless ``ref_candidates`` gives one text per input."""
        self._rank_kwargs(batch_size, rank_kwargs)
        _checks.choice("ref_mode", ref_mode, _REF_MODES)
        sources, candidates = self._inputs(inputs, candidates, instructions)
        refs = None
        if ref_candidates is not None:
            refs = _checks.texts("ref_candidates", ref_candidates)
            _checks.same_length(inputs=sources, ref_candidates=refs)
        results = self._model()._engine.rank_with_ref(sources, candidates, ref_mode, refs)
        if return_scores:
            return _stack([s.astype(np.float32) for s, _, _ in results])
        return _stack([r for _, r, _ in results])

    def compare(self, inputs: Sequence[str], candidates_A: Sequence[str], candidates_B: Sequence[str],
                instructions: Optional[Sequence[str]] = None, batch_size: int = 4, return_logits: bool = False,
                mode: str = "[A,B]+[B,A]"):
        """Is candidates_A[i] better than candidates_B[i] for inputs[i]? A bool array, or with
        ``return_logits=True`` the float32 values of the mode: "[A,B]" logit(A,B), "[B,A]" logit(B,A),
        "[A,B]+[B,A]" logit(A,B) - logit(B,A). True means value > 0."""
        _checks.positive_int("batch_size", batch_size)
        _checks.choice("mode", mode, COMPARE_MODES)
        inputs = _checks.texts("inputs", inputs)
        a = _checks.texts("candidates_A", candidates_A)
        b = _checks.texts("candidates_B", candidates_B)
        _checks.same_length(inputs=inputs, candidates_A=a, candidates_B=b)
        inputs = _checks.with_instructions(inputs, instructions)
        score, _, _ = self._model()._engine.compare(inputs, a, b, mode)
        return score.astype(np.float32) if return_logits else score > 0

    def compare_conversations(self, conversations_a: Sequence[Sequence[Dict[str, str]]],
                              conversations_b: Sequence[Sequence[Dict[str, str]]], batch_size: int = 4,
                              return_logits: bool = False, mode: str = "[A,B]+[B,A]"):
        """Compares two conversations with the same USER turns (``[{"role": "USER"|"ASSISTANT", "content"}]``,
        alternating from a USER turn) as llm-blender does; returns as ``compare``."""
        _checks.positive_int("batch_size", batch_size)
        _checks.choice("mode", mode, COMPARE_MODES)
        a = [self._turns(f"conversations_a[{i}]", c) for i, c in enumerate(self._seq("conversations_a", conversations_a))]
        b = [self._turns(f"conversations_b[{i}]", c) for i, c in enumerate(self._seq("conversations_b", conversations_b))]
        _checks.same_length(conversations_a=a, conversations_b=b)
        score, _, _ = self._model()._engine.compare_conversations(a, b, mode)
        return score.astype(np.float32) if return_logits else score > 0

    def get_best_of_n(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                      instructions: Optional[Sequence[str]] = None, pairrm_cmp_type: str = "bubble",
                      return_all: bool = False, batch_size: int = 8, seed: Optional[int] = None):
        """The best candidate of each input (a list of str), or with ``return_all=True`` every candidate,
        best first. "bubble": one pass comparing neighbours (2(n-1) passes; visiting order = given order,
        or a permutation drawn from ``seed``); "full": all n(n-1) comparisons, then the lowest rank."""
        return self._select(inputs, candidates, instructions, pairrm_cmp_type, return_all, batch_size, seed, worst=False)

    def get_worst_of_n(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                       instructions: Optional[Sequence[str]] = None, pairrm_cmp_type: str = "bubble",
                       return_all: bool = False, batch_size: int = 8, seed: Optional[int] = None):
        """As ``get_best_of_n`` for the worst candidate (``return_all``: worst first)."""
        return self._select(inputs, candidates, instructions, pairrm_cmp_type, return_all, batch_size, seed, worst=True)

    # -- helpers --------------------------------------------------------------------------------------------

    def _select(self, inputs, candidates, instructions, cmp_type, return_all, batch_size, seed, worst):
        _checks.positive_int("batch_size", batch_size)
        _checks.choice("pairrm_cmp_type", cmp_type, ("bubble", "full"))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be an int >= 0 or None, not {seed!r}")
        sources, candidates = self._inputs(inputs, candidates, instructions)
        if all(len(c) == 1 for c in candidates):  # nothing to compare (as llm-blender)
            return [list(c) for c in candidates] if return_all else [c[0] for c in candidates]
        results = self._model()._engine.best_of_n(sources, candidates, cmp_type, worst, seed)
        if not return_all:
            return [c[r["index"]] for c, r in zip(candidates, results)]
        out = []
        for c, r in zip(candidates, results):
            if cmp_type == "bubble":
                out.append([c[i] for i in self._bubble_order(r, worst)])
            else:  # by rank, best (or worst) first; ties keep the lower index first
                key = -r["ranks"] if worst else r["ranks"]
                out.append([c[i] for i in np.argsort(key, kind="stable")])
        return out

    @staticmethod
    def _bubble_order(result: Dict[str, Any], worst: bool) -> List[int]:
        """llm-blender's return_all order for "bubble": the winner, then the loser of each step in turn."""
        order, scores = result["order"], result["pass_scores"]
        current, losers = int(order[0]), []
        for step, s in enumerate(scores):
            nxt = int(order[step + 1])
            keep = s < 0 if worst else s > 0
            losers.append(nxt if keep else current)
            current = current if keep else nxt
        assert current == result["index"]
        return [current] + losers

    @staticmethod
    def _seq(name: str, value: Any) -> Sequence:
        if isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of conversations, not {type(value).__name__}")
        return value

    @staticmethod
    def _turns(name: str, conversation: Any) -> List[tuple]:
        if isinstance(conversation, (str, bytes, dict)) or not isinstance(conversation, Sequence):
            raise TypeError(f"{name} must be a list of turns, not {type(conversation).__name__}")
        turns = []
        for k, t in enumerate(conversation):
            if not isinstance(t, dict) or "role" not in t or "content" not in t:
                raise ValueError(f"{name}[{k}] must be a dict with 'role' and 'content'")
            turns.append((_checks.text(f"{name}[{k}]['role']", t["role"]),
                          _checks.text(f"{name}[{k}]['content']", t["content"])))
        return turns
