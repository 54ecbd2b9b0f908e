"""trl's ``PairRMJudge`` on the pairrm.cpp engine (no llm-blender, no PyTorch), and a PairRM reward function for
trl's GRPO-style trainers (trl >= 1.1 removed the judges), AReaL, verifiers and NeMo-RL (verl: ``pairrm.verl``)."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _checks, _pairrm, _paths
from .blender import Blender

DEFAULT_MODEL = "llm-blender/PairRM"  # what trl's PairRMJudge loads


class PairRMJudge:
    """trl's pairwise judge: ``judge(prompts, completions)`` -> the index of the preferred completion of each
    pair (0 or 1), or with ``return_scores=True`` the probability that the first is better,
    softmax(scores / temperature)[0] of the pair's PairRM rank scores = sigmoid((logit(1st over 2nd) -
    logit(2nd over 1st)) / temperature). Usable wherever trl <= 1.0 takes a ``BasePairwiseJudge`` (OnlineDPO,
    XPO, NashMD, WinRateCallback): they call ``judge`` only.

    Args:
        model: checkpoint directory or repo id; default ``$PAIRRM_MODEL``, else ``"llm-blender/PairRM"`` as trl
            loads it (llm-blender's download or the huggingface_hub cache; offline with ``HF_HUB_OFFLINE=1`` once
            cached).
        precision, threads: as ``pairrm.Model``. device: accepted as trl passes it (the CPU is used).
        seed: seeds the order shuffling (``shuffle_order=True``); None uses numpy's global RNG, as trl does.
        cache_dir: as ``Blender.loadranker``.
    """

    def __init__(self, model: Optional[str] = None, precision: str = "fp32", threads: int = 0,
                 seed: Optional[int] = None, device: Any = None, cache_dir: Optional[str] = None):
        model = model or os.environ.get("PAIRRM_MODEL") or DEFAULT_MODEL
        self.blender = Blender()
        self.blender.loadranker(model, device=device, cache_dir=cache_dir, precision=precision, threads=threads)
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def judge(self, prompts: Sequence[str], completions: Sequence[Sequence[str]], shuffle_order: bool = True,
              return_scores: bool = False, temperature: float = 1.0) -> List[Union[int, float]]:
        prompts = _checks.texts("prompts", prompts)
        completions = _checks.text_lists("completions", completions)
        _checks.same_length(prompts=prompts, completions=completions)
        for i, pair in enumerate(completions):
            if len(pair) != 2:
                raise ValueError(f"PairRM judge requires exactly 2 completions per prompt (completions[{i}] has "
                                 f"{len(pair)})")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, not {temperature!r}")
        if not prompts:
            return []
        # Shuffling averages out the position bias over many calls; the answer always refers to the
        # caller's order.
        if shuffle_order:
            rng = self._rng if self._rng is not None else np.random
            flip = rng.choice([True, False], size=len(prompts))
        else:
            flip = np.zeros(len(prompts), dtype=bool)
        ordered = [pair[::-1] if f else pair for f, pair in zip(flip, completions)]
        if return_scores:
            scores = self.blender.rank(prompts, ordered, return_scores=True, disable_tqdm=True).astype(np.float64)
            scores /= temperature
            scores[flip] = scores[flip][:, ::-1]
            shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))  # softmax of two = sigmoid of the gap
            return (shifted[:, 0] / shifted.sum(axis=-1)).tolist()
        ranks = self.blender.rank(prompts, ordered, disable_tqdm=True) - 1
        ranks[flip] = ranks[flip][:, ::-1]
        return ranks[:, 0].tolist()


# -- reward functions for RL frameworks ---------------------------------------------------------------------------
#
# One callable serves every framework; the form of a call is read from its arguments' types:
#   batch       reward(prompts=[...], completions=[...], **columns) -> list[float]     trl's GRPO trainers
#   per sample  reward(prompt, completion, ...) -> float                               AReaL, verifiers, NeMo-RL
#               reward(prompt, [completion, ...], ...) -> list[float]                  one prompt's group
# where a prompt or completion is a str or one conversation (a list of {"role", "content"} messages).


def _is_message(value: Any) -> bool:
    """A chat message: a mapping with "content" (trl, NeMo-RL), or an object with ``role`` and ``content``
    (verifiers' pydantic messages, which it also treats as messages)."""
    if isinstance(value, Mapping):
        return "content" in value
    return hasattr(value, "role") and hasattr(value, "content")


def _as_list(value: Any) -> Any:
    """A numpy array (verl's and parquet's lists) as a list; anything else as is."""
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, (str, bytes)) else value


def _is_conversation(value: Any) -> bool:
    value = _as_list(value)
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_message(m) for m in value)


def _is_one_text(value: Any) -> bool:
    return isinstance(value, str) or _is_conversation(value)


def _field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, Mapping) else getattr(message, name, None)


def _content(message: Any, role: str) -> str:
    """A message's text: a str, or the text parts of a list of content parts (OpenAI's format, verifiers'). A
    tool-calling assistant turn without text (content None) is empty; an image or audio part is an error, since
    PairRM scores text and dropping the part would score something else."""
    content = _as_list(_field(message, "content"))
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif _field(part, "type") == "text" and isinstance(_field(part, "text"), str):
                parts.append(_field(part, "text"))
            else:
                raise TypeError(f"{role} has a {_field(part, 'type')!r} content part: PairRM scores text only")
        return "".join(parts)
    raise TypeError(f"{role} content must be a str or a list of text parts, not {type(content).__name__}")


def _text(value: Any, role: str) -> str:
    """A prompt or completion as text: a string as is; conversational messages (``[{"role", "content"}]``)
    as the content of a single message, else as trl renders them for its judges ("Role: content\\n\\n")."""
    if isinstance(value, str):
        return value
    value = _as_list(value)
    if isinstance(value, (list, tuple)) and all(_is_message(m) for m in value):
        if len(value) == 1:
            return _checks.text(role, _content(value[0], role))
        return "".join(f"{str(_field(m, 'role') or 'user').capitalize()}: {_content(m, role)}\n\n" for m in value)
    raise TypeError(f"{role} must be a str or a list of {{'role', 'content'}} messages, not {type(value).__name__}")


def _batch_list(name: str, values: Any) -> List[Any]:
    """A batch argument: one entry per sample. A str is refused, never iterated character by character."""
    values = _as_list(values)
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list (one entry per completion), not {type(values).__name__}")
    return list(values)


# -- one model per process ----------------------------------------------------------------------------------------

_shared: Dict[Tuple[str, str], Blender] = {}
_shared_lock = threading.Lock()
_forked_after_load = False


def _after_fork_in_child() -> None:
    """GNU libgomp (the engine's OpenMP) hangs at the first parallel region of a process forked from one
    that had started its threads, which loading a model does. AReaL forks its reward workers, and scores a
    reward that times out 0.0, a silent wrong number; so a child forked after a load raises instead, even in
    the one case that would not hang (every call of the child single-threaded). Create the reward, but do not
    call it, before the workers start."""
    global _forked_after_load, _shared_lock
    _forked_after_load = _forked_after_load or bool(_shared)
    _shared_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def shared_blender(model: str, **load_kwargs: Any) -> Blender:
    """The Blender for ``model`` loaded with ``load_kwargs`` (``Blender.loadranker``'s), loaded once per process
    on first use and shared by every reward function and verl scorer of the process (thread-safe)."""
    key = (os.fspath(model), repr(sorted(load_kwargs.items())))
    with _shared_lock:
        if _forked_after_load:
            raise RuntimeError("pairrm: this process was forked from one that had already loaded a PairRM model; "
                               "OpenMP would hang here. Do not call the reward before the framework starts its "
                               "worker processes (or use the 'spawn' or 'forkserver' start method)")
        if key not in _shared:
            blender = Blender()
            blender.loadranker(model, **load_kwargs)
            _shared[key] = blender
        return _shared[key]


def default_model(model: Optional[str]) -> str:
    return model or os.environ.get("PAIRRM_MODEL") or DEFAULT_MODEL


# -- the reward function ------------------------------------------------------------------------------------------


def reward_function(model: Optional[str] = None, *, reference_column: Optional[str] = "reference",
                    answer_column: Optional[str] = "answer", prompt_column: Optional[str] = None,
                    baseline: Optional[str] = "group", blender: Optional[Blender] = None,
                    name: str = "pairrm_reward", strip_chat_template: Optional[str] = None,
                    eos_strings: Sequence[str] = (), **load_kwargs: Any) -> "PairRMReward":
    """A PairRM reward function for RL trainers (higher is better). The form of each call is read from its
    arguments:

    - batch, trl's GRPO trainers (``reward_funcs=[pairrm.reward_function()]``):
      ``reward(prompts, completions, **columns) -> list[float]``, one float per completion.
      When the batch has the dataset column ``reference_column`` (one reference answer per completion):
      reward = logit(completion over reference) - logit(reference over completion), PairRM's "[A,B]+[B,A]"
      comparison; > 0 means better than the reference. Otherwise, with ``baseline="group"``: the completions of
      the same prompt (GRPO's group) are ranked together and each gets its PairRM rank score, the mean logit
      difference against the group (a lone completion gets 0.0). ``baseline=None`` makes a missing column an
      error.
    - per sample, one prompt (a str or one conversation): ``reward(prompt, completion, ...) -> float`` (AReaL's
      ``(prompt, completions, prompt_ids, completion_ids, **row)``, verifiers' ``(prompt=, completion=,
      answer=, state=, info=, ...)``, NeMo-RL environments); ``reward(prompt, [completions...]) ->
      list[float]`` ranks that prompt's completions as one group. The reference is the keyword
      ``reference_column``, else ``answer_column`` (AReaL's and verifiers' reference answer; an empty string
      is none). A single completion without a reference has no PairRM reward: an error, not 0.0.
    - ``prompt_column``: take the prompt(s) from this keyword when the call has it (AReaL: "messages" or
      "question", the dataset's own prompt rather than the chat-templated text AReaL passes).

    - ``strip_chat_template``: "auto", "chatml" or "llama3" reads a chat template's markup out of text prompts
      and completions first (AReaL and OpenRLHF pass the prompt as the policy's chat template rendered it;
      PairRM was trained on plain text): a prompt's turns become the prompt (one user turn, with any system
      message a line before it, as its text; more as a conversation), a completion's end-of-turn and EOS
      strings (the template's own and ``eos_strings``) are cut. None (default): texts are scored as given.

    Prompts and completions may be conversational (lists of messages). ``model`` / ``load_kwargs`` as
    ``PairRMJudge`` (default ``$PAIRRM_MODEL``, else "llm-blender/PairRM"); the model is found now and loaded
    at the first call, once per process. Or pass a loaded ``blender``. The function can be pickled (AReaL runs
    it in worker processes), except with ``blender=``.
    """
    return PairRMReward(model, load_kwargs, blender=blender, reference_column=reference_column,
                        answer_column=answer_column, prompt_column=prompt_column, baseline=baseline, name=name,
                        strip_chat_template=strip_chat_template, eos_strings=eos_strings)


class PairRMReward:
    """What ``reward_function()`` returns; see there."""

    def __init__(self, model: Optional[str], load_kwargs: Dict[str, Any], *, blender: Optional[Blender],
                 reference_column: Optional[str], answer_column: Optional[str], prompt_column: Optional[str],
                 baseline: Optional[str], name: str, strip_chat_template: Optional[str] = None,
                 eos_strings: Sequence[str] = ()):
        if baseline not in ("group", None):
            raise ValueError(f"baseline must be 'group' or None, not {baseline!r}")
        if strip_chat_template not in (None, "none", "auto", "chatml", "llama3"):
            raise ValueError(f"strip_chat_template must be None, 'auto', 'chatml' or 'llama3', not {strip_chat_template!r}")
        if isinstance(eos_strings, str):
            raise TypeError("eos_strings must be a list of strings, not a str")
        self.strip_chat_template = None if strip_chat_template == "none" else strip_chat_template
        self.eos_strings = [_checks.text("eos_strings", e) for e in eos_strings]
        self.reference_column, self.answer_column, self.prompt_column = reference_column, answer_column, prompt_column
        self.baseline = baseline
        self._given_blender = blender
        self._load_kwargs = dict(load_kwargs)
        # Found now, so that a missing model fails here; loaded at the first call, in the process that calls
        # (a load before a fork would hang the forked workers).
        self._model = None if blender is not None else _paths.resolve_ranker(default_model(model),
                                                                             load_kwargs.get("cache_dir"))
        # trl logs rewards under the function's name, verifiers its metrics.
        self.__name__ = self.__qualname__ = name

    def __getstate__(self) -> Dict[str, Any]:
        if self._given_blender is not None:
            raise TypeError("a reward_function(blender=...) cannot be sent to another process: pass the model "
                            "(reward_function(model, **load_kwargs)) so that each process loads its own")
        return self.__dict__.copy()

    @property
    def blender(self) -> Blender:
        if self._given_blender is not None:
            return self._given_blender
        return shared_blender(self._model, **self._load_kwargs)

    def __call__(self, *args: Any, **columns: Any) -> Union[float, List[float]]:
        prompt, completion, extra = _prompt_and_completion(args, columns)
        if self.prompt_column is not None and columns.get(self.prompt_column) is not None:
            prompt = columns[self.prompt_column]
        prompt, completion = self._untemplated(prompt, False), self._untemplated(completion, True)
        if _is_one_text(prompt):
            self._take_areal_answer(extra, columns)
            return self._one_prompt(_text(prompt, "prompt"), completion, columns)
        if extra:
            raise TypeError(f"the batch form takes 2 positional arguments (prompts, completions), not {len(args)}")
        return self._batch(prompt, completion, columns)

    # -- chat templates -----------------------------------------------------------------------------------------

    def _untemplated(self, value: Any, completion: bool) -> Any:
        """A text, or each text of a list, with the chat template's markup read out (strip_chat_template)."""
        if self.strip_chat_template is None:
            return value
        if isinstance(value, str):
            return self._untemplated_text(value, completion)
        listed = _as_list(value)
        if isinstance(listed, (list, tuple)) and not _is_conversation(listed):
            return [self._untemplated_text(v, completion) if isinstance(v, str) else v for v in listed]
        return value

    def _untemplated_text(self, text: str, completion: bool) -> Any:
        turns = _pairrm.chat_turns(text, self.strip_chat_template, self.eos_strings, not completion)
        if completion:  # the answer: its last assistant turn where it has turns, else the text less its EOS
            if turns and turns[-1][0] == "ASSISTANT":
                return turns[-1][1]
            return _pairrm.strip_end_of_text(text, self.strip_chat_template, self.eos_strings)
        if turns is None:
            return _pairrm.strip_end_of_text(text, self.strip_chat_template, self.eos_strings)
        if len(turns) == 1:
            return turns[0][1]
        return [{"role": role.lower(), "content": content} for role, content in turns]

    # -- batch: trl -------------------------------------------------------------------------------------------

    def _batch(self, prompts: Any, completions: Any, columns: Dict[str, Any]) -> List[float]:
        sources = [_text(p, f"prompts[{i}]") for i, p in enumerate(_batch_list("prompts", prompts))]
        answers = [_text(c, f"completions[{i}]") for i, c in enumerate(_batch_list("completions", completions))]
        _checks.same_length(prompts=sources, completions=answers)
        column = self.reference_column
        if column is not None and columns.get(column) is not None:
            refs = [_text(r, f"{column}[{i}]") for i, r in enumerate(_batch_list(column, columns[column]))]
            _checks.same_length(completions=answers, **{column: refs})
            return self._against(sources, answers, refs)
        if self.baseline is None:
            raise KeyError(f"the batch has no {column!r} column (and baseline=None)")
        return _group_scores(self.blender, sources, answers)

    # -- per sample: AReaL, verifiers, NeMo-RL ----------------------------------------------------------------

    def _one_prompt(self, source: str, completion: Any, columns: Dict[str, Any]) -> Union[float, List[float]]:
        reference = self._sample_reference(columns)
        if _is_one_text(completion):
            answer = _text(completion, "completion")
            if reference is None:
                self._no_reference("a single completion has no PairRM reward without one (pass the prompt's "
                                   "completions as a list to rank them as a group)")
            return self._against([source], [answer], [reference])[0]
        answers = [_text(c, f"completions[{i}]") for i, c in enumerate(_completion_list(completion))]
        if not answers:
            return []
        if reference is not None:
            return self._against([source] * len(answers), answers, [reference] * len(answers))
        if self.baseline is None:
            self._no_reference("and baseline=None")
        return _group_scores(self.blender, [source] * len(answers), answers)

    def _sample_reference(self, columns: Dict[str, Any]) -> Optional[str]:
        """The call's reference answer: ``reference_column``, else ``answer_column``; None or "" is none."""
        for key in (self.reference_column, self.answer_column):
            value = columns.get(key) if key is not None else None
            if value is None or (isinstance(value, str) and not value):
                continue
            if not _is_one_text(value):
                raise TypeError(f"{key} must be one reference (a str or a conversation) for a single prompt, not "
                                f"{type(value).__name__}")
            return _text(value, key)
        return None

    def _no_reference(self, why: str) -> None:
        keys = " or ".join(repr(k) for k in (self.reference_column, self.answer_column) if k is not None)
        raise (KeyError if self.baseline is None else ValueError)(f"no reference ({keys or 'none configured'}): {why}")

    def _take_areal_answer(self, extra: Tuple[Any, ...], columns: Dict[str, Any]) -> None:
        """AReaL passes ``(prompt, completions, prompt_ids, completion_ids, **row)``; its documented signature
        also allows the answer as the fifth positional argument. Anything else positional is refused rather
        than guessed at (a reference taken for token ids would be silently ignored)."""
        if len(extra) > 3:
            raise TypeError(f"a per-sample call takes at most 5 positional arguments (AReaL's prompt, completions, "
                            f"prompt_ids, completion_ids, answer), not {2 + len(extra)}")
        for name, ids in zip(("prompt_ids", "completion_ids"), extra[:2]):
            if _is_one_text(ids):
                raise TypeError(f"the positional argument after the completion is AReaL's {name} (token ids), "
                                f"not text: pass a reference as answer= or {self.reference_column}=")
        if len(extra) == 3:
            if self.answer_column is None or self.answer_column in columns:
                raise TypeError("the answer was given twice, or answer_column is None")
            columns[self.answer_column] = extra[2]

    def _against(self, sources: List[str], answers: List[str], refs: List[str]) -> List[float]:
        return self.blender.compare(sources, answers, refs, return_logits=True).astype(float).tolist()


def _prompt_and_completion(args: Tuple[Any, ...], columns: Dict[str, Any]) -> Tuple[Any, Any, Tuple[Any, ...]]:
    """The prompt(s) and completion(s) of a call, positional (AReaL, NeMo-RL) or keyword (trl's ``prompts=`` /
    ``completions=``, verifiers' ``prompt=`` / ``completion=``), and the positional arguments after them."""
    values = list(args[:2])
    for position, names in enumerate((("prompts", "prompt"), ("completions", "completion"))):
        given = [n for n in names if n in columns]
        if position < len(values):
            if given:
                raise TypeError(f"reward() got the {names[0]} both positionally and as {given[0]}=")
            continue
        if len(given) != 1:
            raise TypeError(f"reward() needs the {names[0]}: positionally, or as {names[0]}= or {names[1]}=")
        values.append(columns.pop(given[0]))
    return values[0], values[1], args[2:]


def _completion_list(completion: Any) -> List[Any]:
    completion = _as_list(completion)
    if not isinstance(completion, (list, tuple)):
        raise TypeError(f"completion must be a str, a conversation or a list of them, not {type(completion).__name__}")
    return list(completion)


def _group_scores(blender: Blender, sources: List[str], answers: List[str]) -> List[float]:
    groups: "OrderedDict[str, List[int]]" = OrderedDict()
    for i, s in enumerate(sources):
        groups.setdefault(s, []).append(i)
    keys = list(groups)
    scores = blender.rank(keys, [[answers[i] for i in groups[k]] for k in keys], return_scores=True)
    out = [0.0] * len(answers)
    for k, row in zip(keys, scores):
        for i, s in zip(groups[k], row):
            out[i] = float(s)
    return out
