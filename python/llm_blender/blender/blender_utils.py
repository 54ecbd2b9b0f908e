"""llm_blender.blender.blender_utils: the numpy helpers scripts import (the torch loaders are not provided)."""
from pairrm.ranks import get_topk_candidates_from_ranks

__all__ = ["get_topk_candidates_from_ranks"]
