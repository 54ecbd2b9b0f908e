"""Argument checks shared by the Python API: every mistake becomes a TypeError/ValueError naming the
argument, before any work is done."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

from ._pairrm import Error


class InputError(Error, AssertionError):
    """Raised where llm-blender ``assert``s on its input (list lengths, empty candidate lists, conversation turns,
    prompt tokens of a model row). A ``pairrm.Error`` (so a ``ValueError``) for this package's own API, and an
    ``AssertionError`` so that code written against llm-blender still catches it as it did."""


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates cannot become UTF-8
        raise ValueError(f"{name} is not valid Unicode text ({e.reason} at index {e.start})") from None
    return value


def texts(name: str, values: Any) -> List[str]:
    if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):  # a numpy array of strings
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of str, not {type(values).__name__}")
    return [text(f"{name}[{i}]", v) for i, v in enumerate(values)]


def text_lists(name: str, values: Any) -> List[List[str]]:
    if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):  # a 2-D numpy array of strings
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of lists of str, not {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if hasattr(v, "tolist"):  # a numpy array of strings
            v = v.tolist()
        out.append(texts(f"{name}[{i}]", v))
        if not out[-1]:
            raise InputError(f"{name}[{i}] is empty: each input needs at least one candidate")
    return out


def same_length(**lists: Sequence) -> None:
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise InputError(f"the lists must have the same length (got {shown})")


def with_instructions(inputs: List[str], instructions: Optional[Sequence[str]]) -> List[str]:
    """llm-blender prepends each instruction to its input with no separator."""
    if instructions is None:
        return inputs
    instructions = texts("instructions", instructions)
    same_length(inputs=inputs, instructions=instructions)
    return [ins + x for ins, x in zip(instructions, inputs)]


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}")
    return value
