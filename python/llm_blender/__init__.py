"""``import llm_blender`` for code written against llm-blender (yuchenlin/LLM-Blender), on pairrm.cpp: a thin layer
over the ``pairrm`` package, no PyTorch or transformers import.

It is installed by the ``pairrm`` distribution outside site-packages' top level (``pairrm/compat``, put on
``sys.path`` by ``pairrm-llm-blender.pth`` after site-packages), so it never replaces the files of the real
llm-blender: where the real one is installed, ``import llm_blender`` finds it first, and if this copy is reached
first anyway (an earlier ``sys.path`` entry) it hands the import over to the real one. See
docs/coming-from-llm-blender.md.
"""
import importlib.machinery
import importlib.util
import os
import sys


def _other_llm_blender():
    """The spec of an ``llm_blender`` elsewhere on sys.path (the real package), or None."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for entry in list(sys.path):
        path = os.path.abspath(entry or os.getcwd())
        if path == here or not os.path.isdir(path):
            continue
        try:
            spec = importlib.machinery.PathFinder.find_spec(__name__, [path])
        except (ImportError, OSError, ValueError):
            continue
        if spec is None or not spec.origin:  # none here, or a namespace package
            continue
        if not os.path.exists(os.path.join(os.path.dirname(spec.origin), "_pairrm_compat.py")):
            return spec  # not a copy of this layer
    return None


_real = _other_llm_blender() if __name__ == "llm_blender" else None
if _real is not None:
    # Replace this module with the real one for the rest of the import (importlib returns sys.modules[name]).
    _module = importlib.util.module_from_spec(_real)
    sys.modules[__name__] = _module
    _real.loader.exec_module(_module)
else:
    from pairrm import __version__ as __pairrm_version__  # noqa: F401  (which pairrm serves this layer)
    from llm_blender.blender.blender import Blender
    from llm_blender.pair_ranker.config import RankerConfig
    from llm_blender.gen_fuser.config import GenFuserConfig
    from llm_blender.blender.config import BlenderConfig

    __all__ = ["Blender", "BlenderConfig", "GenFuserConfig", "RankerConfig"]
