"""llm_blender.blender (pairrm)."""
