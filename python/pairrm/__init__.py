"""pairrm: PairRM (llm-blender's pairwise reward model) on the pairrm.cpp engine, no PyTorch needed.

    import pairrm
    blender = pairrm.Blender()
    blender.loadranker("llm-blender/PairRM")           # a repo id (hub cache) or a checkpoint directory
    blender.rank(["hi"], [["a", "b", "c"]])            # -> int32 ranks, 1 = best

- ``Blender``: llm-blender's Blender, every public method with the same arguments, defaults and return types
  (the generative fuser excepted). ``import llm_blender`` gives the same class where the real llm-blender is
  not installed (docs/coming-from-llm-blender.md).
- ``PairRMJudge``: trl's PairRMJudge (``judge(prompts, completions, ...)``); ``reward_function``: a PairRM
  reward for trl's GRPO-style trainers, AReaL, verifiers and NeMo-RL (a ``PairRMReward``); ``pairrm.verl``:
  verl's custom reward function (docs/rl-frameworks.md).
- ``Model``: lower-level access (tokenize, token rows, logits); ``hf.DebertaV2PairRM``: the model card's class.
Errors from the engine are ``pairrm.Error`` (a ``ValueError``); ``pairrm.InputError`` is raised where
llm-blender asserts (a ``ValueError`` and an ``AssertionError``).
"""
from ._pairrm import Error, version as _engine_version
from ._checks import InputError
from .configs import BlenderConfig, GenFuserConfig, RankerConfig
from .model import Model
from .blender import Blender
from .generate import OpenAIEndpoint
from .judge import PairRMJudge, PairRMReward, reward_function
from .ranks import get_topk_candidates_from_ranks

__version__ = _engine_version()
__all__ = ["Blender", "BlenderConfig", "Error", "GenFuserConfig", "InputError", "Model", "OpenAIEndpoint",
           "PairRMJudge", "PairRMReward", "RankerConfig", "get_topk_candidates_from_ranks", "reward_function",
           "__version__"]
