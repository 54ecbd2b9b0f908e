"""PairRM as verl's custom reward function (volcengine/verl). In the trainer's config:

    custom_reward_function.path=<this file>   # python -c "import pairrm.verl; print(pairrm.verl.__file__)"
    custom_reward_function.name=compute_score         # reward_manager naive / dapo / prime (one response a call)
    custom_reward_function.name=compute_score_batch   # with reward_manager.name=batch (the whole batch a call)

verl calls ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`` for each response and
passes no prompt, so the prompt comes from ``extra_info["question"]`` (where verl's
examples/data_preprocess scripts keep the question; another key with ``prompt_key``). The reward is
logit(response over reference) - logit(reference over response), > 0 when better than the reference; the
reference is ``ground_truth`` (or an ``extra_info`` key named by ``reference``). ``compute_score_batch`` also
works without references: each prompt's responses are then ranked as one group (GRPO's), as
``pairrm.reward_function()`` does.

Options: ``model`` (default ``$PAIRRM_MODEL``, else "llm-blender/PairRM"), ``prompt_key``, ``reference``, from
``custom_reward_function.reward_kwargs`` or ``make_compute_score(...)`` in a file of your own. The model is
loaded at the first call, once per process, and shared (verl's reward loop calls from several threads).

verl loads this file by its path under a made-up module name, so it imports only absolute names.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, List, Optional

from pairrm.judge import _as_list, _group_scores, _is_one_text, _text, default_model, shared_blender

DEFAULT_PROMPT_KEY = "question"  # verl's examples/data_preprocess/{gsm8k,geo3k,...}.py: extra_info["question"]
GROUND_TRUTH = "ground_truth"  # reference=: the ground_truth argument (reward_model.ground_truth of the data)


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Optional[Mapping] = None, *,
                  model: Optional[str] = None, prompt_key: str = DEFAULT_PROMPT_KEY,
                  reference: Optional[str] = GROUND_TRUTH, **verl_kwargs: Any) -> float:
    """One response's reward (a float: verl uses it as the score, and logs it as "acc" in its reward loop;
    a dict would only add extra metrics, and PairRM has one number). ``data_source`` is not used;
    ``verl_kwargs`` (``reward_router_address``, ...) are verl's, ignored. Raises when the prompt or the
    reference is missing: a single response has no PairRM reward without a reference."""
    source = _prompt(extra_info, prompt_key)
    response = _response(solution_str, "solution_str")
    ref = _reference(reference, ground_truth, extra_info)
    if ref is None:
        raise ValueError(f"pairrm.verl.compute_score: this response has no reference ({_where(reference)} is "
                         f"empty), and a single response has no PairRM reward without one; rank each prompt's "
                         f"responses together instead: reward_manager.name=batch with compute_score_batch")
    blender = shared_blender(default_model(model))
    return float(blender.compare([source], [response], [ref], return_logits=True)[0])


def compute_score_batch(data_sources: Any, solution_strs: Any, ground_truths: Any, extra_infos: Any, *,
                        model: Optional[str] = None, prompt_key: str = DEFAULT_PROMPT_KEY,
                        reference: Optional[str] = GROUND_TRUTH, **verl_kwargs: Any) -> List[float]:
    """verl's batch reward manager: one float per response. With a reference for every response, as
    ``compute_score``; with none at all (or ``reference=None``), the responses of the same prompt in the call
    are ranked as one group and each gets its PairRM rank score (a lone response 0.0). Some with and some
    without is an error (the two scales differ)."""
    responses = [_response(s, f"solution_strs[{i}]") for i, s in enumerate(_as_list(solution_strs))]
    infos, truths = list(_as_list(extra_infos)), list(_as_list(ground_truths))
    if not len(infos) == len(truths) == len(responses):
        raise ValueError(f"pairrm.verl.compute_score_batch: {len(responses)} solution_strs, {len(truths)} "
                         f"ground_truths and {len(infos)} extra_infos")
    sources = [_prompt(info, prompt_key) for info in infos]
    refs = [_reference(reference, truth, info) for truth, info in zip(truths, infos)]
    blender = shared_blender(default_model(model))
    if all(r is None for r in refs):
        return _group_scores(blender, sources, responses)
    if any(r is None for r in refs):
        missing = [i for i, r in enumerate(refs) if r is None]
        raise ValueError(f"pairrm.verl.compute_score_batch: responses {missing[:5]} have no reference "
                         f"({_where(reference)} is empty) and the others have one")
    return blender.compare(sources, responses, refs, return_logits=True).astype(float).tolist()


def make_compute_score(model: Optional[str] = None, prompt_key: str = DEFAULT_PROMPT_KEY,
                       reference: Optional[str] = GROUND_TRUTH, batch: bool = False) -> Callable[..., Any]:
    """``compute_score`` (or with ``batch=True`` ``compute_score_batch``) with these options, for a file of
    your own that verl's ``custom_reward_function.path`` points at::

        import pairrm.verl
        compute_score = pairrm.verl.make_compute_score(prompt_key="problem")
    """
    if not isinstance(prompt_key, str) or not prompt_key:
        raise TypeError(f"prompt_key must be a key of extra_info (a str), not {prompt_key!r}")
    if not batch and reference is None:
        raise ValueError("reference=None leaves a single response nothing to be compared with: use batch=True")
    scorer = compute_score_batch if batch else compute_score

    def configured(*args: Any, **kwargs: Any) -> Any:
        return scorer(*args, model=model, prompt_key=prompt_key, reference=reference, **kwargs)

    configured.__name__ = configured.__qualname__ = scorer.__name__
    return configured


def _prompt(extra_info: Any, prompt_key: str) -> str:
    if not isinstance(extra_info, Mapping) or extra_info.get(prompt_key) is None:
        raise KeyError(f"pairrm.verl: extra_info has no {prompt_key!r}, the prompt (verl passes no prompt to a "
                       f"reward function: put it in the data's extra_info, as verl's data_preprocess scripts do "
                       f"with 'question', or set prompt_key)")
    value = extra_info[prompt_key]
    if not _is_one_text(value):
        raise TypeError(f"extra_info[{prompt_key!r}] must be a str or a conversation, not {type(value).__name__}")
    return _text(value, f"extra_info[{prompt_key!r}]")


def _response(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str (the decoded response), not {type(value).__name__}")
    return value


def _reference(reference: Optional[str], ground_truth: Any, extra_info: Any) -> Optional[str]:
    """The reference answer, or None when there is none (not configured, None, or an empty string)."""
    if reference is None:
        return None
    if reference == GROUND_TRUTH:
        value = ground_truth
    else:
        value = extra_info.get(reference) if isinstance(extra_info, Mapping) else None
    value = _as_list(value)
    if value is None or (isinstance(value, str) and not value):
        return None
    if not _is_one_text(value):
        raise TypeError(f"{_where(reference)} must be a str (the reference answer), not {type(value).__name__}")
    return _text(value, _where(reference))


def _where(reference: Optional[str]) -> str:
    if reference is None:
        return "reference=None: the reference"
    return "ground_truth" if reference == GROUND_TRUTH else f"extra_info[{reference!r}]"
