"""Where a ranker name points: a directory, llm-blender's own download, or the huggingface_hub cache."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from . import _pairrm


def _first_env(*names: str) -> Optional[str]:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def hf_home() -> Path:
    home = _first_env("HF_HOME")
    if home:
        return Path(home).expanduser()
    xdg = _first_env("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface"


def hub_cache() -> Path:
    """huggingface_hub's cache (constants.HF_HUB_CACHE)."""
    explicit = _first_env("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
    return Path(explicit).expanduser() if explicit else hf_home() / "hub"


def llm_blender_cache() -> Path:
    """llm-blender's default ``cache_dir``: ``transformers.utils.hub.TRANSFORMERS_CACHE``, which transformers
    4.x derives from these variables in this order, ending at the hub cache."""
    explicit = _first_env("TRANSFORMERS_CACHE", "PYTORCH_TRANSFORMERS_CACHE", "PYTORCH_PRETRAINED_BERT_CACHE")
    return Path(explicit).expanduser() if explicit else hub_cache()


def resolve_ranker(ranker_path: "os.PathLike[str] | str", cache_dir: "os.PathLike[str] | str | None") -> str:
    """The checkpoint directory for ``Blender.loadranker(ranker_path, cache_dir=...)``, in llm-blender's order:

    1. ``ranker_path`` itself when it exists;
    2. ``<cache_dir>/<ranker_path>``: the plain directory llm-blender's ``snapshot_download(local_dir=...)``
       left there (``cache_dir`` defaults to llm-blender's, see ``llm_blender_cache``), used as is;
    3. a repo id through the huggingface_hub cache layout (``models--org--name``) in ``cache_dir`` when given,
       else in the default hub cache; downloaded there when missing (never with ``HF_HUB_OFFLINE=1``).
    """
    name = os.fspath(ranker_path)
    if os.path.exists(name):
        if not os.path.isdir(name):
            raise NotADirectoryError(f"{name!r} is a file; loadranker() takes a checkpoint directory or a repo id")
        return name
    cache = Path(os.fspath(cache_dir)).expanduser() if cache_dir is not None else llm_blender_cache()
    plain = cache / name
    if (plain / "config.json").exists():
        return str(plain)
    if not _pairrm.is_repo_id(name):
        raise FileNotFoundError(f"model directory not found: {name!r} (nor {str(plain)!r})")
    return _pairrm.resolve_model(name, str(cache) if cache_dir is not None else "")
