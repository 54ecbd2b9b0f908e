"""llm_blender.gen_fuser (pairrm): the config only; pairrm has no generative fuser."""
