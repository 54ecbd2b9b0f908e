"""llm_blender.pair_ranker.config."""
from pairrm.configs import RankerConfig

__all__ = ["RankerConfig"]
