"""Shared pytest fixtures: the reference fixtures (the repository's tests/fixtures, or $PAIRRM_FIXTURES) and loaded
models."""
import json
import os
import pathlib

import pytest

import pairrm

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(os.environ.get("PAIRRM_FIXTURES") or REPO / "tests" / "fixtures")
BUNDLED_TINY = REPO / "models" / "tiny"


def logit_tolerance(reference: float) -> float:
    """As the C++ tests (tests/fixtures.h): the reference's own float32 run differs from its float64 run by
    up to 3.9e-6; our largest measured error is 1.2e-5; 1e-3 would be a bug."""
    return 1e-4 + 1e-4 * abs(reference)


@pytest.fixture(scope="session")
def text_cases():
    path = FIXTURES / "text_cases.json"
    if not path.exists():
        pytest.fail(f"fixtures not found at {FIXTURES} (set PAIRRM_FIXTURES)")
    return json.loads(path.read_text(encoding="utf-8"))


def model_dir(name: str) -> str:
    return str(FIXTURES / "models" / name)


_blenders = {}


def blender_for(name: str) -> "pairrm.Blender":
    if name not in _blenders:
        b = pairrm.Blender()
        b.loadranker(model_dir(name), threads=2)
        _blenders[name] = b
    return _blenders[name]


@pytest.fixture(scope="session")
def tiny():
    return blender_for("tiny")


# -- llm-blender / trl compatibility: a filled hub cache and snippets run in a fresh interpreter ----------------

# The directory holding the pairrm package and pairrm-llm-blender.pth (a build tree's python/ or site-packages).
PACKAGE_ROOT = pathlib.Path(pairrm.__file__).resolve().parent.parent
CHECKPOINT_FILES = ("config.json", "model.safetensors", "spm.model", "added_tokens.json", "special_tokens_map.json",
                    "tokenizer_config.json")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def llm_blender_module():
    """``import llm_blender`` in this process, as site-packages would find it (the layer over pairrm here)."""
    import site
    site.addsitedir(str(PACKAGE_ROOT))
    import llm_blender
    assert pathlib.Path(llm_blender.__file__).resolve().is_relative_to(PACKAGE_ROOT.resolve())
    return llm_blender


def require_module(name: str, why: str):
    """``import name`` for a test that needs an optional dependency: skipped where it is not importable, except
    under CI (any non-empty CI variable), where a missing or broken install is a failure, not a silent skip.
    ``why`` says where CI gets it. Usable at module level (the skip then covers the whole file)."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as e:  # absent, or present but broken (an import inside it fails)
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not importable ({e}); {why}", pytrace=False)
        pytest.skip(f"{name} is not importable ({e})", allow_module_level=True)


def require_torch() -> None:
    """The torch half of the "with and without torch" tests (scripts/setup.sh --dev installs python3-torch)."""
    require_module("torch", "CI installs python3-torch with scripts/setup.sh --dev")


def link_checkpoint(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        (dst / name).symlink_to((src / name).resolve())
    return dst


def fill_hub_cache(cache: pathlib.Path, repo: str, src: pathlib.Path) -> pathlib.Path:
    """The huggingface_hub layout: models--org--name/{refs/main, snapshots/<commit>/...}."""
    root = cache / ("models--" + repo.replace("/", "--"))
    link_checkpoint(src, root / "snapshots" / COMMIT)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(COMMIT)
    return root


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory):
    """A hub cache where llm-blender/PairRM and llm-blender/PairRM-hf are the tiny fixture model."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    for repo in ("llm-blender/PairRM", "llm-blender/PairRM-hf"):
        fill_hub_cache(cache, repo, pathlib.Path(model_dir("tiny")))
    return cache


PRELUDE = """
import json, site, sys, warnings
site.addsitedir({root!r})  # processes pairrm-llm-blender.pth, as site-packages do at start-up
if {block_torch!r}:
    sys.modules["torch"] = None  # `import torch` raises ImportError: PyTorch is not importable
def report(**values):
    print("RESULT:" + json.dumps(values))
"""


def run_snippet(code: str, *, torch: bool, hub: pathlib.Path, extra_env: dict = None) -> dict:
    """Runs user code in a new interpreter, offline against the filled hub cache; returns what it report()ed."""
    import subprocess
    import sys
    import textwrap
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "PAIRRM_MODEL"))}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub), PYTHONPATH=str(PACKAGE_ROOT))
    env.update(extra_env or {})
    source = PRELUDE.format(root=str(PACKAGE_ROOT), block_torch=not torch) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"snippet failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT:")]
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0][len("RESULT:"):])
    result["_stderr"] = done.stderr
    return result
