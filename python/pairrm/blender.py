"""llm-blender's ``Blender`` on the pairrm.cpp engine, method for method and argument for argument.

Every public method of ``llm_blender.Blender`` (commit 2a67366) is here with the same argument names, defaults and
return types: ranks int32 arrays (1 = best), ``rank`` scores float32, ``rank_with_ref`` scores float64,
``compare`` bool or float32 arrays, best/worst-of-n lists (or, for ``pairrm_cmp_type="full"`` with
``return_all=True``, llm-blender's 2-D numpy array of str). Where llm-blender ``assert``s on its input, the error
is a ``pairrm.InputError`` (both ``ValueError`` and ``AssertionError``). docs/coming-from-llm-blender.md lists
every difference; in short:

- It runs on the CPU. A ``device`` (any string, ``torch.device`` or CUDA ordinal) other than the CPU gives a
  warning, never an error. fp32 always (``fp16`` is llm-blender's CUDA-only half precision).
- Additions: candidate lists may differ in length between inputs (a list of 1-D arrays is returned instead of
  llm-blender's AssertionError); ``precision``/``threads``/... options in ``loadranker``; ``seed`` in
  best/worst-of-n; ``n_generate`` also drives an OpenAI-compatible server.
- "bubble" best/worst-of-n visits the candidates in their given order (or a ``seed``ed random one);
  llm-blender draws the order from torch's global RNG.
- Truncation is per example (the model card's rule); llm-blender's collator gives a candidate half of what the
  *longest* source of its batch leaves, so the two agree at ``batch_size=1`` or when nothing is cut.
- ``batch_size`` is checked but never changes a result; ``disable_tqdm`` / ``use_tqdm`` are accepted (no bars).
- The generative fuser (``loadfuser``, ``fuse``, ``rank_and_fuse``) is not part of pairrm: they raise.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _checks, _paths, generate as _generate
from .configs import BlenderConfig, RankerConfig
from .model import COMPARE_MODES, Model
from .ranks import get_ranks_from_scores, get_topk_candidates_from_ranks

REF_MODES = ("longest", "shortest", "median_length", "first", "last")
DEFAULT_MODE = "[A,B]+[B,A]"
# loadranker() options of this package (not RankerConfig fields): passed to pairrm.Model.
ENGINE_OPTIONS = ("precision", "threads", "special_tokens", "byte_fallback", "attention")
NO_FUSER = ("the generative fuser (llm-blender's GenFuser, a Flan-T5 generator) is not part of pairrm: pairrm "
            "provides the PairRM ranker only. Rank with pairrm and fuse with llm-blender or any generator, or use "
            "get_best_of_n / best_of_n_generate")

log = logging.getLogger("pairrm")


def _stack(arrays: List[np.ndarray], dtype) -> Union[np.ndarray, List[np.ndarray]]:
    """One 2-D array when every input had the same number of candidates, else a list of 1-D arrays."""
    if not arrays:
        return np.zeros((0, 0), dtype=dtype)
    if all(len(a) == len(arrays[0]) for a in arrays):
        return np.stack(arrays).astype(dtype, copy=False)
    return [a.astype(dtype, copy=False) for a in arrays]


def device_name(device: Any) -> Optional[str]:
    """A device as llm-blender and torch accept it (str, torch.device, CUDA ordinal), as a string. pairrm
    computes on the CPU; anything else is reported with a warning and otherwise ignored."""
    if device is None:
        return None
    if isinstance(device, str):
        name = device
    elif isinstance(device, int) and not isinstance(device, bool):
        name = f"cuda:{device}"
    elif hasattr(device, "type"):  # torch.device (Accelerator().device in trl), without importing torch
        name = str(device)
    else:
        raise TypeError(f"device must be a str, a torch.device or an int, not {type(device).__name__}")
    if name.split(":")[0].strip().lower() != "cpu":
        warnings.warn(f"pairrm runs on the CPU: device={name!r} is ignored (fp32 numbers, as llm-blender's on a "
                      "CPU)", UserWarning, stacklevel=3)
    return name


def reference_of(candidates: List[str], ref_mode: str) -> str:
    """llm-blender's choice of the reference candidate (lengths in characters, first on ties)."""
    if ref_mode == "longest":
        return max(candidates, key=len)
    if ref_mode == "shortest":
        return min(candidates, key=len)
    if ref_mode == "median_length":
        return sorted(candidates, key=len)[len(candidates) // 2]
    if ref_mode == "first":
        return candidates[0]
    if ref_mode == "last":
        return candidates[-1]
    raise ValueError(f"Unknown ref_mode: {ref_mode}")


def compare_mode(mode: Any, quiet_for: Sequence[str] = ()) -> str:
    """llm-blender runs "[A,B]" and "[B,A]" as such and any other mode as "[A,B]+[B,A]" (its README even passes
    mode="longest" to rank_with_ref); so does pairrm, with a warning for a mode that looks like a typo."""
    if mode in COMPARE_MODES:
        return mode
    if mode not in quiet_for:
        warnings.warn(f"mode={mode!r} is not one of {', '.join(COMPARE_MODES)}: running {DEFAULT_MODE!r}, as "
                      "llm-blender does", UserWarning, stacklevel=3)
    return DEFAULT_MODE


class Blender:
    """``llm_blender.Blender`` for the PairRM ranker: ``Blender()`` then ``loadranker("llm-blender/PairRM")``."""

    def __init__(self, blender_config: Optional[BlenderConfig] = None, ranker_config: Optional[RankerConfig] = None,
                 fuser_config: Any = None):
        if fuser_config is not None:
            raise NotImplementedError(f"Blender(fuser_config=...): {NO_FUSER}")
        self.blender_config = blender_config or BlenderConfig()
        self.ranker_config = ranker_config
        self.fuser_config = None
        self.ranker: Optional[Model] = None
        # llm-blender's transformers tokenizer and torch collator: pairrm tokenizes in the engine.
        self.ranker_tokenizer = None
        self.ranker_collator = None
        self.fuser = None
        self.fuser_tokenizer = None
        self._engines: Dict[Tuple[int, int], Model] = {}
        if ranker_config is None:
            log.info("No ranker config provided, no ranker loaded, please load ranker first through loadranker()")
            return
        fields = ranker_config.to_dict() if hasattr(ranker_config, "to_dict") else dict(vars(ranker_config))
        self.loadranker(fields.get("load_checkpoint") or fields.get("model_name"), **fields)

    # -- loading --------------------------------------------------------------------------------------------

    def loadranker(self, ranker_path: "os.PathLike[str] | str", device: Any = None, **kwargs: Any) -> None:
        """Loads a PairRM checkpoint: a directory (``llm-blender/PairRM-hf`` or the original ``PairRM`` layout),
        llm-blender's own download ``<cache_dir>/<ranker_path>``, or a repo id through the huggingface_hub cache
        (``cache_dir`` when given; downloaded when missing, never with ``HF_HUB_OFFLINE=1``).

        ``kwargs`` set RankerConfig fields as in llm-blender: ``source_maxlength`` / ``candidate_maxlength``
        set the truncation (tokens of a segment with its [CLS], prefix and [SEP]; default the checkpoint's
        1224 / 412); ``cache_dir``; the other fields are stored. pairrm's own options: ``precision``
        ("fp32" exact, "bf16", "int8"), ``threads`` (0 = all cores), ``special_tokens``, ``byte_fallback``,
        ``attention`` (see ``pairrm.Model``).
        """
        if ranker_path is None:
            raise TypeError("loadranker() needs a ranker path or repo id (got None)")
        cache_dir = kwargs.pop("cache_dir", None)
        options = {k: kwargs.pop(k) for k in ENGINE_OPTIONS if k in kwargs}
        device = device_name(device)
        path = _paths.resolve_ranker(ranker_path, cache_dir)
        config = self._config_of(path)
        for k, v in kwargs.items():
            if k not in RankerConfig.__dataclass_fields__:
                warnings.warn(f"loadranker(): {k}={v!r} is not a RankerConfig field; stored, no effect", UserWarning,
                              stacklevel=2)
            setattr(config, k, v)
        lengths = (_length_or_none(config.source_maxlength), _length_or_none(config.candidate_maxlength))
        model = Model(path, source_max_length=lengths[0], candidate_max_length=lengths[1], **options)
        info = model.info
        config.source_maxlength = info["source_max_tokens"]
        config.candidate_maxlength = info["candidate_max_tokens"]
        config.load_checkpoint = str(path)
        config.cache_dir = str(cache_dir if cache_dir is not None else _paths.llm_blender_cache())
        config.device = device or "cpu"
        config.ranker_type = config.ranker_type or "pairranker"
        config.model_name = config.model_name or os.fspath(ranker_path)
        self.ranker_config = config
        self.ranker = model
        self._engines = {(config.source_maxlength, config.candidate_maxlength): model}
        log.info("Successfully loaded ranker from %s", path)

    @staticmethod
    def _config_of(path: str) -> RankerConfig:
        """The original checkpoint's config.json is a RankerConfig; the -hf one is a DebertaV2 config."""
        import json
        try:
            with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
                return RankerConfig.from_dict(json.load(f))
        except (OSError, ValueError):
            return RankerConfig()  # the engine reports what is wrong with the file

    def loadfuser(self, fuser_path: str, device: Any = None, **kwargs: Any):
        raise NotImplementedError(f"loadfuser(): {NO_FUSER}")

    def _model(self) -> Model:
        if self.ranker is None:
            raise RuntimeError("No ranker loaded, please load ranker first through loadranker()")
        return self.ranker

    def _engine_for(self, source_max_length: Any = None, candidate_max_length: Any = None) -> Model:
        """The ranker with llm-blender's per-call ``source_max_length`` / ``candidate_max_length`` (None or 0 =
        the loaded ones). The limits are fixed at load, so other limits load the checkpoint again, once."""
        model = self._model()
        key = (source_max_length or self.ranker_config.source_maxlength,
               candidate_max_length or self.ranker_config.candidate_maxlength)
        if key not in self._engines:
            self._engines[key] = model.with_lengths(*key)
        return self._engines[key]

    def _inputs(self, inputs: Sequence[str], candidates: Any, instructions: Optional[Sequence[str]]):
        inputs = _checks.texts("inputs", inputs)
        candidates = _checks.text_lists("candidates", candidates)
        _checks.same_length(inputs=inputs, candidates=candidates)
        return _checks.with_instructions(inputs, instructions), candidates

    # -- ranking --------------------------------------------------------------------------------------------

    def rank(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]], instructions: Optional[Sequence[str]] = None,
             return_scores: bool = False, batch_size: int = 8, disable_tqdm: bool = False, **rank_kwargs: Any):
        """Ranks (int32, 1 = best, ties share the best rank) of each input's candidates, or with
        ``return_scores=True`` their float32 scores (higher is better): score[k] = mean over j (k included) of
        logit(k over j) - logit(j over k). ``rank_kwargs``: ``source_max_length`` / ``candidate_max_length`` for
        this call; others are ignored, as llm-blender ignores them."""
        _checks.positive_int("batch_size", batch_size)
        engine = self._engine_for(rank_kwargs.get("source_max_length"), rank_kwargs.get("candidate_max_length"))
        sources, candidates = self._inputs(inputs, candidates, instructions)
        # float32 as llm-blender's scores, and the ranks of those float32 values (its ties).
        scores = [s.astype(np.float32) for s, _ in engine._engine.rank(sources, candidates)]
        if return_scores:
            return _stack(scores, np.float32)
        return _stack([get_ranks_from_scores(s) for s in scores], np.int32)

    def rank_with_ref(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                      instructions: Optional[Sequence[str]] = None, return_scores: bool = False, batch_size: int = 8,
                      ref_mode: str = "longest", ref_candidates: Optional[Sequence[str]] = None, **rank_kwargs: Any):
        """Scores (float64) or ranks of each candidate against one reference per input: score(c) = -compare
        logit(ref, c), with compare's ``mode`` from ``rank_kwargs`` as llm-blender passes it on (default
        "[A,B]+[B,A]": logit(c, ref) - logit(ref, c)). The reference is chosen by ``ref_mode`` (longest,
        shortest, median_length, first, last; by characters) unless ``ref_candidates`` gives one per input."""
        _checks.positive_int("batch_size", batch_size)
        kwargs = dict(rank_kwargs)
        mode = compare_mode(kwargs.pop("mode", DEFAULT_MODE), quiet_for=REF_MODES)
        kwargs.pop("disable_tqdm", None)
        lengths = (kwargs.pop("source_max_length", None), kwargs.pop("candidate_max_length", None))
        if kwargs:  # llm-blender hands these to compare(), which has no such arguments
            raise TypeError(f"rank_with_ref() got an unexpected keyword argument {next(iter(kwargs))!r}")
        engine = self._engine_for(*lengths)
        sources, candidates = self._inputs(inputs, candidates, instructions)
        refs = self._references(candidates, ref_mode, ref_candidates)
        flat = [(s, r, c) for s, r, cs in zip(sources, refs, candidates) for c in cs]
        logits, _, _ = engine._engine.compare([f[0] for f in flat], [f[1] for f in flat], [f[2] for f in flat], mode)
        bounds = np.cumsum([0] + [len(c) for c in candidates])
        scores = [-logits[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        if return_scores:
            return _stack(scores, np.float64)
        return _stack([get_ranks_from_scores(s) for s in scores], np.int32)

    @staticmethod
    def _references(candidates: List[List[str]], ref_mode: str, ref_candidates: Optional[Sequence[str]]) -> List[str]:
        if ref_candidates is None:
            return [reference_of(c, ref_mode) for c in candidates]
        if hasattr(ref_candidates, "tolist"):
            ref_candidates = ref_candidates.tolist()
        if len(ref_candidates) != len(candidates):
            raise _checks.InputError(f"Number of ref_candidates must be the same as inputs (got "
                                     f"{len(ref_candidates)} and {len(candidates)})")
        if not all(isinstance(x, str) for x in ref_candidates):
            raise _checks.InputError("Each ref_candidate must be a string")
        return _checks.texts("ref_candidates", ref_candidates)

    # -- comparing ------------------------------------------------------------------------------------------

    def compare(self, inputs: Sequence[str], candidates_A: Sequence[str], candidates_B: Sequence[str],
                instructions: Optional[Sequence[str]] = None, batch_size: int = 4, return_logits: bool = False,
                mode: str = DEFAULT_MODE, disable_tqdm: bool = False):
        """Is candidates_A[i] better than candidates_B[i] for inputs[i]? A bool array, or with
        ``return_logits=True`` the float32 value of the mode: "[A,B]" logit(A, B); "[B,A]" logit(B, A) (not
        negated, as llm-blender); "[A,B]+[B,A]" (and any other mode, as llm-blender) logit(A,B) - logit(B,A).
        True means value > 0."""
        _checks.positive_int("batch_size", batch_size)
        mode = compare_mode(mode)
        inputs = _checks.texts("inputs", inputs)
        a = _checks.texts("candidates_A", candidates_A)
        b = _checks.texts("candidates_B", candidates_B)
        _checks.same_length(candidates_A=a, candidates_B=b)
        _checks.same_length(inputs=inputs, candidates_A=a)
        inputs = _checks.with_instructions(inputs, instructions)
        score, _, _ = self._model()._engine.compare(inputs, a, b, mode)
        return score.astype(np.float32) if return_logits else score > 0

    def compare_conversations(self, conversations_a: Sequence[Sequence[Dict[str, str]]],
                              conversations_b: Sequence[Sequence[Dict[str, str]]], batch_size: int = 4,
                              return_logits: bool = False, mode: str = DEFAULT_MODE):
        """Compares two conversations with the same USER turns (``[{"role": "USER"|"ASSISTANT", "content"}]``,
        alternating from a USER turn; roles in any case) through llm-blender's instruction and
        ``<Response i>`` strings; returns as ``compare``."""
        _checks.positive_int("batch_size", batch_size)
        mode = compare_mode(mode)
        a = [self._turns(f"conversations_a[{i}]", c) for i, c in enumerate(self._seq("conversations_a", conversations_a))]
        b = [self._turns(f"conversations_b[{i}]", c) for i, c in enumerate(self._seq("conversations_b", conversations_b))]
        _checks.same_length(conversations_a=a, conversations_b=b)
        from ._pairrm import Error
        try:
            score, _, _ = self._model()._engine.compare_conversations(a, b, mode)
        except Error as e:  # turn structure: where llm-blender asserts
            raise _checks.InputError(str(e)) from None
        return score.astype(np.float32) if return_logits else score > 0

    # -- best / worst of n ----------------------------------------------------------------------------------

    def get_best_of_n(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                      instructions: Optional[Sequence[str]] = None, pairrm_cmp_type: str = "bubble",
                      return_all: bool = False, batch_size: int = 8, seed: Optional[int] = None):
        """The best candidate of each input (a list of str), or with ``return_all=True`` every candidate, best
        first. "bubble": one pass comparing neighbours both ways, 2(n-1) passes, in the given order (or one drawn
        from ``seed``); ``return_all`` lists the winner then each step's loser (llm-blender's order).
        "full": every ordered pair, then ``get_topk_candidates_from_ranks`` (``return_all``: a 2-D numpy array of
        str, as llm-blender returns it)."""
        return self._select(inputs, candidates, instructions, pairrm_cmp_type, return_all, batch_size, seed, worst=False)

    def get_worst_of_n(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                       instructions: Optional[Sequence[str]] = None, pairrm_cmp_type: str = "bubble",
                       return_all: bool = False, batch_size: int = 8, seed: Optional[int] = None):
        """As ``get_best_of_n`` for the worst candidate (``return_all``: worst first)."""
        return self._select(inputs, candidates, instructions, pairrm_cmp_type, return_all, batch_size, seed, worst=True)

    def _select(self, inputs, candidates, instructions, cmp_type, return_all, batch_size, seed, worst):
        _checks.positive_int("batch_size", batch_size)
        _checks.choice("pairrm_cmp_type", cmp_type, ("bubble", "full"))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be an int >= 0 or None, not {seed!r}")
        texts = _checks.text_lists("candidates", candidates)
        if all(len(c) == 1 for c in texts):  # nothing to compare: returned as given, as llm-blender
            return candidates if return_all else [c[0] for c in texts]
        if cmp_type == "full":
            return self._select_full(inputs, texts, instructions, return_all, batch_size, worst)
        sources, texts = self._inputs(inputs, texts, instructions)
        results = self._model()._engine.best_of_n(sources, texts, "bubble", worst, seed)
        if not return_all:
            return [c[r["index"]] for c, r in zip(texts, results)]
        return [[c[i] for i in self._bubble_order(r, worst)] for c, r in zip(texts, results)]

    def _select_full(self, inputs, candidates, instructions, return_all, batch_size, worst):
        """llm-blender's "full": rank(), then the candidates sorted by rank (negated for the worst)."""
        ranks = self.rank(inputs, candidates, instructions=instructions, batch_size=batch_size)
        if isinstance(ranks, np.ndarray):  # llm-blender's types: a 2-D array of str, or its first column
            top = get_topk_candidates_from_ranks(-ranks if worst else ranks, candidates,
                                                 top_k=None if return_all else 1)
            return top if return_all else [row[0] for row in top]
        out = []  # lists that differ in length (pairrm only): lists of str, one input at a time
        for r, c in zip(ranks, candidates):
            top = get_topk_candidates_from_ranks((-r if worst else r)[None, :], [c], top_k=None)[0].tolist()
            out.append(top if return_all else top[0])
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
        if current != result["index"]:
            raise RuntimeError("bubble replay disagrees with the engine's selection")
        return [current] + losers

    # -- generation -----------------------------------------------------------------------------------------

    def n_generate(self, model: Any, model_tokenizer: Any, inputs: Sequence[str],
                   instructions: Optional[Sequence[str]] = None, n: int = 5, sampling_mode: Optional[str] = "top_p_sampling",
                   batch_size: int = 4, **generate_kwargs: Any) -> List[List[str]]:
        """n samples for each input (instruction + "\\n" + input when instructions are given), from:
        a Hugging Face model with its tokenizer (``model.generate``; duck-typed, transformers is never
        imported here); a ``vllm.LLM``; or an OpenAI-compatible server (``pairrm.OpenAIEndpoint(url, ...)``, or
        the URL as ``model`` with the served model's name as ``model_tokenizer``). ``sampling_mode``:
        "top_p_sampling" (top_p 1.0), "top_k_sampling" (top_k 50), both temperature 0.7 unless given, or None
        (``generate_kwargs`` as given)."""
        inputs = _checks.texts("inputs", inputs)
        if instructions is not None and len(instructions) != len(inputs):
            raise _checks.InputError("Number of inputs and instructions must be the same if instructions is not None")
        n = _checks.positive_int("n", n)
        batch_size = _checks.positive_int("batch_size", batch_size)
        kwargs = _generate.sampling_kwargs(sampling_mode, generate_kwargs)
        prompts = inputs if instructions is None else \
            [x + "\n" + y for x, y in zip(_checks.texts("instructions", instructions), inputs)]
        return _generate.n_generate(model, model_tokenizer, prompts, n, batch_size, kwargs)

    def best_of_n_generate(self, model: Any, model_tokenizer: Any, inputs: Sequence[str],
                           instructions: Optional[Sequence[str]] = None, n: int = 5,
                           sampling_mode: Optional[str] = "top_p_sampling", batch_size: int = 4,
                           pairrm_cmp_type: str = "bubble", return_all: bool = False, **generate_kwargs: Any):
        """``n_generate`` then ``get_best_of_n`` of the samples (ranked with the instruction prepended to the
        input without a separator, as llm-blender ranks them)."""
        samples = self.n_generate(model, model_tokenizer, inputs, instructions=instructions, n=n,
                                  sampling_mode=sampling_mode, batch_size=batch_size, **generate_kwargs)
        return self.get_best_of_n(inputs, samples, instructions=instructions, batch_size=min(batch_size, 32),
                                  pairrm_cmp_type=pairrm_cmp_type, return_all=return_all)

    # -- the fuser (not provided) ---------------------------------------------------------------------------

    def fuse(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]], instructions: Optional[Sequence[str]] = None,
             batch_size: int = 4, **generate_kwargs: Any):
        raise NotImplementedError(f"fuse(): {NO_FUSER}")

    def rank_and_fuse(self, inputs: Sequence[str], candidates: Sequence[Sequence[str]],
                      instructions: Optional[Sequence[str]] = None, return_scores: bool = False, batch_size: int = 4,
                      top_k: int = 3, **generate_kwargs: Any):
        raise NotImplementedError(f"rank_and_fuse(): {NO_FUSER}")

    # -- conversation checks --------------------------------------------------------------------------------

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


def _length_or_none(value: Any) -> Optional[int]:
    """RankerConfig lengths: None or 0 mean the checkpoint's (llm-blender's ``x or default``)."""
    return None if value in (None, 0) else value
