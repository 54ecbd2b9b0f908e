"""llm_blender.gen_fuser.config."""
from pairrm.configs import GenFuserConfig

__all__ = ["GenFuserConfig"]
