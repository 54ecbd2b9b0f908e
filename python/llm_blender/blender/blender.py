"""llm_blender.blender.blender: ``Blender`` is ``pairrm.Blender`` (every public method of llm-blender's)."""
from pairrm.blender import Blender
from pairrm.configs import BlenderConfig, GenFuserConfig, RankerConfig
from pairrm.ranks import get_ranks_from_scores, get_scores_from_cmps, get_topk_candidates_from_ranks

__all__ = ["Blender", "BlenderConfig", "GenFuserConfig", "RankerConfig", "get_ranks_from_scores",
           "get_scores_from_cmps", "get_topk_candidates_from_ranks"]
