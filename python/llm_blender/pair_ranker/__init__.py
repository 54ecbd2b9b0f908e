"""llm_blender.pair_ranker (pairrm)."""
