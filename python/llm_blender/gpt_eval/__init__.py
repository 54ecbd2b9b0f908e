"""llm_blender.gpt_eval (pairrm): the ranking helpers of its utils."""
