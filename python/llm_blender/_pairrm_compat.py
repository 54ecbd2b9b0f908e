"""Marks this llm_blender as pairrm's layer (so one copy of it never hands the import over to another copy)."""
