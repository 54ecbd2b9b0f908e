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
