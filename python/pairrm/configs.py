"""llm-blender's configuration dataclasses (``BlenderConfig``, ``RankerConfig``, ``GenFuserConfig``): the same
fields and defaults, with the ``dataclasses_json`` methods scripts call (``to_dict``, ``from_dict``, ``to_json``,
``from_json``), without the ``dataclasses_json`` dependency."""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Optional


class _JsonMixin:
    def to_dict(self, encode_json: bool = False) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, kvs: Dict[str, Any], *, infer_missing: bool = False):
        """Keeps the known fields, as dataclasses_json does (unknown keys are dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(kvs).items() if k in names})

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), default=str, **kwargs)

    @classmethod
    def from_json(cls, s: str, **kwargs: Any):
        return cls.from_dict(json.loads(s))


@dataclasses.dataclass
class BlenderConfig(_JsonMixin):
    """``device`` defaults to "cuda" as in llm-blender; pairrm always runs on the CPU and only warns about a
    device passed to ``loadranker`` explicitly. ``use_tqdm`` is kept but pairrm draws no progress bars."""
    device: str = "cuda"
    use_tqdm: bool = True


@dataclasses.dataclass
class RankerConfig(_JsonMixin):
    """The ranker fields of llm-blender. pairrm reads ``load_checkpoint`` (or ``model_name``), ``cache_dir``,
    ``source_maxlength``, ``candidate_maxlength`` and ``device``; the training fields are kept as data."""
    ranker_type: Optional[str] = None
    model_type: Optional[str] = None
    model_name: Optional[str] = None
    cache_dir: Optional[str] = None
    load_checkpoint: Optional[str] = None
    source_maxlength: Optional[int] = None
    candidate_maxlength: Optional[int] = None
    n_tasks: int = 1
    num_pos: int = 1
    num_neg: int = 1
    sub_sampling_mode: str = "all_pair"
    sub_sampling_ratio: float = 0.5
    loss_type: str = "instructgpt"
    reduce_type: str = "linear"
    inference_mode: str = "bubble"
    drop_out: float = 0.05
    fp16: bool = True
    device: Optional[str] = None


@dataclasses.dataclass
class GenFuserConfig(_JsonMixin):
    """Accepted for imports and pickles; pairrm has no generative fuser (``Blender(fuser_config=...)`` raises)."""
    model_name: str = "llm-blender/gen_fuser_3b"
    cache_dir: Optional[str] = None
    max_length: int = 1024
    candidate_maxlength: int = 128
    torch_dtype: str = "bfloat16"
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    device: Optional[str] = None
