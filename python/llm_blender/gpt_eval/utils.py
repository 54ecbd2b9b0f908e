"""llm_blender.gpt_eval.utils: ``get_scores_from_cmps`` and ``get_ranks_from_scores`` (the rest of llm-blender's
GPT-evaluation utilities are not provided)."""
from pairrm.ranks import get_ranks_from_scores, get_scores_from_cmps

__all__ = ["get_ranks_from_scores", "get_scores_from_cmps"]
