"""Lower-level access to a loaded PairRM checkpoint: tokenizer, token rows, raw logits."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from . import _checks
from . import _pairrm
from ._pairrm import Engine

PRECISIONS = ("fp32", "bf16", "int8")
COMPARE_MODES = ("[A,B]", "[B,A]", "[A,B]+[B,A]")


def _length(name: str, value: Any) -> int:
    """None -> 0 (the checkpoint's limit); the engine checks the range 3..8192."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int (tokens) or None, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive number of tokens (3..8192), not {value}")
    return int(value)


class Model:
    """A PairRM checkpoint directory (``config.json``, ``model.safetensors``, ``spm.model``, ...), loaded once.

    One Model can be used from several Python threads at once: each call borrows its own scratch memory and
    runs without the GIL.

    Args:
        path: the checkpoint directory (``llm-blender/PairRM-hf`` layout or the original ranker layout), or a
            Hugging Face repo id ``org/name[@revision]`` (the hub cache, downloaded when missing; honours
            HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE).
        precision: "fp32" (exact, default), "bf16" or "int8" (faster, approximate; see BENCHMARKS.md).
        threads: threads per call; 0 = all cores.
        attention: the attention's matrix products under bf16/int8: "auto" (default: bf16 on AMD Zen 4 and
            later, where it is twice as fast, else fp32), "fp32" or "bf16".
        special_tokens: "literal" (default: "<|source|>", "[SEP]", ... in user text are plain text) or "hf"
            (they become their token ids, as in transformers).
        byte_fallback: True tokenizes like the slow SentencePiece tokenizer (byte pieces for unknown
            characters) instead of the fast tokenizer the published pipeline uses.
        source_max_length, candidate_max_length: truncation (llm-blender's ``source_maxlength`` /
            ``candidate_maxlength``), in tokens of a segment counting its [CLS], prefix token and [SEP]; each
            candidate may also use half of what the source leaves unused (the model card's rule, per example).
            None = the checkpoint's (1224 and 412 for PairRM); each must be in 3..8192.
        cache_dir: the huggingface_hub cache used for a repo id (default: $HF_HUB_CACHE, else $HF_HOME/hub,
            else ~/.cache/huggingface/hub).
    """

    def __init__(self, path: "os.PathLike[str] | str", precision: str = "fp32", threads: int = 0,
                 special_tokens: str = "literal", byte_fallback: bool = False, attention: str = "auto",
                 source_max_length: Optional[int] = None, candidate_max_length: Optional[int] = None,
                 cache_dir: "os.PathLike[str] | str | None" = None):
        path = os.fspath(path)
        if not os.path.isdir(path):
            if not _pairrm.is_repo_id(path):
                raise FileNotFoundError(f"model directory not found: {path!r}")
            # A Hugging Face repo id: the hub cache (as huggingface_hub fills it), downloaded when missing.
            path = _pairrm.resolve_model(path, os.fspath(cache_dir) if cache_dir is not None else "")
        _checks.choice("precision", precision, PRECISIONS)
        _checks.choice("special_tokens", special_tokens, ("literal", "hf"))
        _checks.choice("attention", attention, ("auto", "fp32", "bf16"))
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an int >= 0 (0 = all cores), not {threads!r}")
        self.path = path
        self._options = dict(precision=precision, threads=threads, special_tokens=special_tokens,
                             byte_fallback=bool(byte_fallback), attention=attention)
        self._engine = Engine(path, precision, special_tokens, bool(byte_fallback), threads, attention,
                              _length("source_max_length", source_max_length),
                              _length("candidate_max_length", candidate_max_length))

    def with_lengths(self, source_max_length: Optional[int], candidate_max_length: Optional[int]) -> "Model":
        """The same checkpoint and options with other truncation limits (a second engine: the limits are fixed
        at load)."""
        return Model(self.path, source_max_length=source_max_length, candidate_max_length=candidate_max_length,
                     **self._options)

    @property
    def info(self) -> Dict[str, Any]:
        """Shape, tokenizer options, precision and engine version."""
        return self._engine.info()

    @property
    def threads(self) -> int:
        return self._engine.threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._engine.threads = value

    def tokenize(self, text: str) -> np.ndarray:
        """``[CLS] + tokens(text) + [SEP]`` as int32 ids."""
        return self._engine.tokenize(_checks.text("text", text))

    def build_row(self, source: str, candidate1: str, candidate2: str) -> Dict[str, Any]:
        """The network's token row for one comparison (model-card truncation applied) and the positions of
        the three prefix tokens the head reads: ``{"ids", "source_pos", "cand1_pos", "cand2_pos"}``."""
        return self._engine.build_row(_checks.text("source", source), _checks.text("candidate1", candidate1),
                                      _checks.text("candidate2", candidate2))

    def logits(self, rows: Sequence[Dict[str, Any]]) -> np.ndarray:
        """logit(candidate1 over candidate2) of each row (dicts as ``build_row`` returns), float64."""
        return self._engine.logits(list(rows))

    def compare(self, sources: Sequence[str], candidates_a: Sequence[str], candidates_b: Sequence[str],
                mode: str = "[A,B]+[B,A]") -> Dict[str, np.ndarray]:
        """float64 ``score`` of the mode and the ``logit_ab`` / ``logit_ba`` passes (NaN when not run)."""
        _checks.choice("mode", mode, COMPARE_MODES)
        score, ab, ba = self._engine.compare(_checks.texts("sources", sources), _checks.texts("candidates_a", candidates_a),
                                             _checks.texts("candidates_b", candidates_b), mode)
        return {"score": score, "logit_ab": ab, "logit_ba": ba}

    def __repr__(self) -> str:
        i = self.info
        return (f"pairrm.Model({self.path!r}, layout={i['layout']}, layers={i['num_layers']}, "
                f"hidden={i['hidden_size']}, precision={i['precision']}, "
                f"max_lengths=({i['source_max_tokens']}, {i['candidate_max_tokens']}))")
