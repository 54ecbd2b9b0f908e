"""pairrm: PairRM (llm-blender's pairwise reward model) on the pairrm.cpp engine, no PyTorch needed.

    import pairrm
    blender = pairrm.Blender()
    blender.loadranker("/path/to/PairRM-hf")          # a checkpoint directory
    blender.rank(["hi"], [["a", "b", "c"]])            # -> int32 ranks, 1 = best

- ``Blender``: llm-blender's Blender (compare, rank, rank_with_ref, get_best_of_n, get_worst_of_n,
  compare_conversations) with the same argument names, defaults and return types.
- ``PairRMJudge``: trl's PairRMJudge (``judge(prompts, completions, ...)``).
- ``Model``: lower-level access (tokenize, token rows, logits).
Errors from the engine are ``pairrm.Error`` (a ``ValueError``).
"""
from ._pairrm import Error, version as _engine_version
from .model import Model
from .blender import Blender
from .judge import PairRMJudge

__version__ = _engine_version()
__all__ = ["Blender", "Error", "Model", "PairRMJudge", "__version__"]
