"""``DebertaV2PairRM``, the class of the PairRM-hf model card, on the pairrm.cpp engine.

    from llm_blender.pair_ranker.pairrm import DebertaV2PairRM   # or pairrm.hf.DebertaV2PairRM
    pairrm = DebertaV2PairRM.from_pretrained("llm-blender/PairRM-hf", device_map="cuda:0").eval()
    outputs = pairrm(**encodings)          # input_ids / attention_mask, padded (torch tensors or numpy arrays)
    outputs.logits                         # logit(candidate1 over candidate2) per row, the input's array type

Each row's tokens are the positions where ``attention_mask`` is not 0 (padding on either side is dropped: the
network has no absolute positions, so this is what the masked model computes), and the head reads the first
``<|source|>``, ``<|candidate1|>`` and ``<|candidate2|>`` of the row. torch is never imported here: a torch
input is converted with its own methods and the logits come back through ``torch.from_numpy`` of the torch the
caller already imported.
"""
from __future__ import annotations

import json
import os
import sys
import types
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import _checks
from .blender import device_name
from .model import Model


class SequenceClassifierOutput:
    """What transformers' ``SequenceClassifierOutput`` offers scripts: attributes, ``out["logits"]``,
    ``out[0]`` (over the fields that are not None), ``to_tuple()``, ``keys()``."""

    _fields = ("loss", "logits", "hidden_states", "attentions")

    def __init__(self, loss: Any = None, logits: Any = None, hidden_states: Any = None, attentions: Any = None):
        self.loss, self.logits, self.hidden_states, self.attentions = loss, logits, hidden_states, attentions

    def keys(self) -> List[str]:
        return [k for k in self._fields if getattr(self, k) is not None]

    def to_tuple(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.keys())

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __repr__(self) -> str:
        return f"SequenceClassifierOutput({', '.join(f'{k}={getattr(self, k)!r}' for k in self.keys())})"


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, tokens), got shape {a.shape}")
    return a


def _like(values: np.ndarray, template: Any) -> Any:
    """float32 values as the caller's array type (a torch tensor for torch input)."""
    values = values.astype(np.float32)
    if _is_torch(template):
        return sys.modules["torch"].from_numpy(values)
    return values


def _precision_of(torch_dtype: Any) -> str:
    """torch_dtype -> engine precision: bfloat16 runs the bf16 GEMMs; float16 (not available) and float32 fp32."""
    name = str(torch_dtype).lower() if torch_dtype is not None else "float32"
    if "bfloat16" in name:
        return "bf16"
    if "float16" in name or name.endswith("half"):
        warnings.warn("torch_dtype float16 is not available: pairrm runs fp32", UserWarning, stacklevel=3)
    return "fp32"


class DebertaV2PairRM:
    """The PairRM-hf model: ``from_pretrained``, ``eval``/``train``/``to``/``cuda``/``cpu``/``float``/``half``
    (accepted, the engine stays on the CPU), ``config``, ``device``, ``dtype``, and calls on token rows."""

    def __init__(self, model: Model, config: Dict[str, Any]):
        self._model = model
        self.config = types.SimpleNamespace(**config)
        self.config.to_dict = lambda: dict(config)
        self.training = False
        self.source_prefix_id = int(config.get("source_prefix_id", 128001))
        self.cand1_prefix_id = int(config.get("cand1_prefix_id", 128002))
        self.cand2_prefix_id = int(config.get("cand2_prefix_id", 128003))
        self.n_tasks = int(config.get("n_tasks", 1))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: "os.PathLike[str] | str", *model_args: Any,
                        device_map: Any = None, torch_dtype: Any = None, cache_dir: Any = None,
                        revision: Optional[str] = None, local_files_only: bool = False, threads: int = 0,
                        **kwargs: Any) -> "DebertaV2PairRM":
        """A checkpoint directory or a repo id from the huggingface_hub cache (``cache_dir``; downloaded when
        missing unless ``local_files_only`` or ``HF_HUB_OFFLINE=1``). ``device_map``: any device or map, the
        engine runs on the CPU (warned). Other transformers loading arguments are accepted and ignored."""
        from . import _pairrm
        name = os.fspath(pretrained_model_name_or_path)
        if isinstance(device_map, dict):
            for d in set(device_map.values()):
                device_name(d)
        elif device_map not in (None, "auto"):
            device_name(device_map)
        if not os.path.isdir(name) and _pairrm.is_repo_id(name):
            ref = name + (f"@{revision}" if revision and "@" not in name else "")
            cache = os.fspath(cache_dir) if cache_dir is not None else ""
            if local_files_only:
                found = _pairrm.cached_model(ref, cache)
                if found is None:
                    raise OSError(f"{ref} is not in the hub cache and local_files_only=True")
                name = found
            else:
                name = _pairrm.resolve_model(ref, cache)
        model = Model(name, precision=_precision_of(torch_dtype), threads=threads)
        with open(os.path.join(model.path, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        return cls(model, config)

    # torch.nn.Module's chaining methods: the engine is CPU fp32 whatever is asked.
    def eval(self) -> "DebertaV2PairRM":
        self.training = False
        return self

    def train(self, mode: bool = True) -> "DebertaV2PairRM":
        if mode:
            warnings.warn("pairrm's DebertaV2PairRM is inference only (no dropout, no gradients)", UserWarning,
                          stacklevel=2)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "DebertaV2PairRM":
        for a in list(args) + [kwargs.get("device")]:
            if isinstance(a, (str, int)) and not isinstance(a, bool) or type(a).__name__ == "device":
                device_name(a)  # a dtype (float32 etc.) changes nothing
        return self

    def cuda(self, device: Any = None) -> "DebertaV2PairRM":
        device_name("cuda" if device is None else device)
        return self

    def cpu(self) -> "DebertaV2PairRM":
        return self

    def float(self) -> "DebertaV2PairRM":
        return self

    def half(self) -> "DebertaV2PairRM":
        warnings.warn("half() is not available: pairrm runs fp32", UserWarning, stacklevel=2)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "DebertaV2PairRM":
        return self

    @property
    def device(self) -> Any:
        """torch.device("cpu") when the caller imported torch (so ``t.to(model.device)`` works), else "cpu"."""
        torch = sys.modules.get("torch")
        return torch.device("cpu") if torch is not None else "cpu"

    @property
    def dtype(self) -> Any:
        torch = sys.modules.get("torch")
        return torch.float32 if torch is not None else np.float32

    @property
    def engine(self) -> Model:
        return self._model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None,
                position_ids: Any = None, inputs_embeds: Any = None, labels: Any = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Any:
        """logits[i] = logit(candidate1 over candidate2) of row i, float32 in the input's array type.
        ``token_type_ids`` / ``position_ids`` change nothing in this model (no type vocabulary, relative
        positions only), as in transformers. ``labels`` (1/0/-1 per row and task) give llm-blender's loss."""
        if inputs_embeds is not None or input_ids is None:
            raise NotImplementedError("pairrm's DebertaV2PairRM takes input_ids (inputs_embeds is not supported)")
        if output_attentions or output_hidden_states:
            raise NotImplementedError("pairrm's DebertaV2PairRM returns logits only (no attentions or hidden states)")
        ids = _to_numpy(input_ids, "input_ids")
        mask = np.ones_like(ids) if attention_mask is None else _to_numpy(attention_mask, "attention_mask")
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask has shape {mask.shape} but input_ids {ids.shape}")
        logits = self._model.logits([self._row(i, ids[i], mask[i]) for i in range(ids.shape[0])])
        loss = None if labels is None else self._loss(logits, labels, input_ids)
        out = SequenceClassifierOutput(loss=loss, logits=_like(logits, input_ids))
        return out.to_tuple() if return_dict is False else out

    def _row(self, i: int, ids: np.ndarray, mask: np.ndarray) -> Dict[str, Any]:
        tokens = ids[mask != 0].astype(np.int64)
        positions = []
        for name, token in (("<|source|>", self.source_prefix_id), ("<|candidate1|>", self.cand1_prefix_id),
                            ("<|candidate2|>", self.cand2_prefix_id)):
            where = np.flatnonzero(tokens == token)
            if where.size == 0:  # llm-blender asserts this
                raise _checks.InputError(f"{name} id not in input_ids (row {i})")
            positions.append(int(where[0]))
        if np.any((tokens < 0) | (tokens > np.iinfo(np.int32).max)):
            raise ValueError(f"row {i}: token ids must be non-negative int32 values")
        return {"ids": tokens.astype(np.int32), "source_pos": positions[0], "cand1_pos": positions[1],
                "cand2_pos": positions[2]}

    def _loss(self, logits: np.ndarray, labels: Any, template: Any) -> Any:
        """llm-blender's compute_loss for one task: mean of -log sigmoid(sign(label) * logit)."""
        if self.n_tasks != 1:
            raise NotImplementedError("labels: the loss needs per-task scores when n_tasks > 1")
        values = labels.detach().cpu().numpy() if _is_torch(labels) else labels
        signs = np.sign(np.asarray(values, dtype=np.float64).reshape(len(logits), -1))
        z = signs * logits[:, None]
        value = np.mean(np.logaddexp(0.0, -z))  # -log(sigmoid(z)), stable
        return _like(np.asarray(value), template)
