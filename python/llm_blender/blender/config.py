"""llm_blender.blender.config."""
from pairrm.configs import BlenderConfig

__all__ = ["BlenderConfig"]
