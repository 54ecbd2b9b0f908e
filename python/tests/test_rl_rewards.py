"""pairrm.reward_function() and pairrm.verl as the RL frameworks call them: each test replays the framework's own
call (the source it copies is named at the test) and checks the number against the Blender computing the same
comparison, and against the float64 reference fixtures (text_cases.json).

Equality with the Blender is exact: a row's logit is bitwise the same whatever else is in the batch and for
any thread count (README, "No padding"), so the per-sample and batch forms must agree to the bit."""
import asyncio
import importlib.util
import inspect
import os
import pathlib
import pickle
import threading
from functools import partial
from typing import get_origin

import pytest

import pairrm
import pairrm.judge
import pairrm.verl
from conftest import logit_tolerance, model_dir, run_snippet

TINY = model_dir("tiny")


@pytest.fixture(scope="module")
def reward():
    return pairrm.reward_function(TINY, threads=2)


def compare_rows(text_cases):
    """(prompt, completion, reference, float64 reference logit) of the fixture's "[A,B]+[B,A]" rows whose
    reference is non-empty (an empty reference is "none" in the per-sample forms, tested on its own)."""
    rows, modes = text_cases["pair_rows"], text_cases["models"]["tiny"]["compare_modes"]
    out = [(rows[m["row"]]["source"], rows[m["row"]]["candidate1"], rows[m["row"]]["candidate2"], m["default"])
           for m in modes if rows[m["row"]]["candidate2"]]
    assert len(out) >= 5
    return out


def group_cases(text_cases):
    cases = [c for c in text_cases["models"]["tiny"]["rank_cases"] if len(c["candidates"]) > 2]
    assert len(cases) >= 2
    return cases


def logit(tiny, prompt, completion, reference):
    return float(tiny.compare([prompt], [completion], [reference], return_logits=True)[0])


# -- trl: the batch form, unchanged, and the values the per-sample forms must equal -------------------------------

def test_trl_batch_call_and_per_sample_forms_agree(reward, tiny, text_cases):
    # trl/trainer/grpo_trainer.py GRPOTrainer._calculate_rewards:
    #   reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids_list, **reward_kwargs)
    # reward_kwargs: every dataset column but "prompt"/"completion", one value per completion, and trainer_state.
    rows = compare_rows(text_cases)
    batch = reward(prompts=[r[0] for r in rows], completions=[r[1] for r in rows],
                   completion_ids=[[1, 2]] * len(rows), reference=[r[2] for r in rows], trainer_state=None)
    assert batch == [logit(tiny, *r[:3]) for r in rows]
    for got, (_, _, _, want) in zip(batch, rows, strict=True):
        assert abs(got - want) <= 2 * logit_tolerance(want)
    one = [reward(p, c, reference=ref) for p, c, ref, _ in rows]
    assert all(type(x) is float for x in one) and one == batch


def test_trl_batch_refuses_a_string_where_a_list_belongs(reward):
    # Three prompts and a 3-character string: iterated, 'x', 'y', 'z' would be scored as three completions.
    with pytest.raises(TypeError, match="completions must be a list"):
        reward(prompts=["p1", "p2", "p3"], completions="xyz")
    with pytest.raises(TypeError, match="reference must be a list"):
        reward(prompts=["p1", "p2", "p3"], completions=["a", "b", "c"], reference="abc")
    with pytest.raises(pairrm.InputError, match="same length"):
        reward(prompts=["p1", "p2"], completions=["a", "b", "c"])
    with pytest.raises(TypeError, match="2 positional arguments"):
        reward(["p1"], ["a"], [[1, 2]])


def test_one_prompt_strings_are_never_iterated_character_by_character(reward, tiny):
    # All three 8 characters long: a version iterating them would pair 8 one-character rows and return a
    # list of 8 floats instead of failing on a length mismatch.
    prompt, completion, ref = "hi there", "a reply!", "hello yo"
    got = reward(prompt, completion, reference=ref)
    assert type(got) is float and got == logit(tiny, prompt, completion, ref)
    group = reward(prompt, [completion, ref, "bye now!"])
    assert group == tiny.rank([prompt], [[completion, ref, "bye now!"]], return_scores=True)[0].tolist()


def test_one_prompt_with_a_list_of_completions_is_ranked_as_its_group(reward, tiny, text_cases):
    for case in group_cases(text_cases):
        prompt, candidates = case["source"], case["candidates"]
        got = reward(prompt, candidates)
        assert got == reward(prompts=[prompt] * len(candidates), completions=candidates)  # GRPO's group
        assert got == tiny.rank([prompt], [candidates], return_scores=True)[0].tolist()
        tolerance = 2 * logit_tolerance(max(abs(x) for row in case["M"] for x in row))
        assert all(abs(g - w) <= tolerance for g, w in zip(got, case["scores"], strict=True))
        ref = candidates[0]
        assert reward(prompt, candidates, answer=ref) == [logit(tiny, prompt, c, ref) for c in candidates]
    assert reward("a prompt", []) == []


def test_one_completion_without_a_reference_is_an_error_not_zero(reward):
    with pytest.raises(ValueError, match="no reference"):
        reward("What is 2+2?", "4")
    with pytest.raises(ValueError, match="no reference"):
        reward("What is 2+2?", "4", answer="")  # verifiers' answer when the dataset has none
    strict = pairrm.reward_function(TINY, threads=2, baseline=None)
    with pytest.raises(KeyError, match="baseline=None"):
        strict("What is 2+2?", ["4", "5"])


def test_per_sample_bad_input_raises(reward):
    with pytest.raises(TypeError, match="completion must be"):
        reward("prompt", 42, answer="ref")
    with pytest.raises(TypeError, match="completions\\[1\\] must be a str"):
        reward("prompt", ["a", 7], answer="ref")
    with pytest.raises(TypeError, match="one reference"):
        reward("prompt", "a", reference=["r1", "r2"])
    with pytest.raises(TypeError, match="both positionally and as prompt="):
        reward("prompt", "a", prompt="again", answer="ref")
    with pytest.raises(TypeError, match="needs the completions"):
        reward(prompt="prompt", answer="ref")


# -- AReaL ----------------------------------------------------------------------------------------------------------

def areal_row(prompt, answer):
    """A row of areal/dataset/gsm8k.py get_gsm8k_rl_dataset: the dataset's question and answer, plus messages."""
    return {"question": prompt, "answer": answer, "messages": [{"role": "user", "content": prompt}]}


def test_areal_rlvr_workflow_call(reward, tiny, text_cases):
    # areal/workflow/rlvr.py RLVRWorkflow._compute_rewards:
    #   reward = await self.async_reward_fn(prompt_str, completions_str, resp.input_tokens, resp.output_tokens,
    #                                       **task_data)
    # (the signature of areal/reward/gsm8k.py gsm8k_reward_fn: prompt, completions, prompt_ids, completion_ids,
    # answer, **kwargs). prompt_str is the chat-templated prompt; the row's "answer" is the reference.
    by_messages = pairrm.reward_function(TINY, threads=2, prompt_column="messages")
    for prompt, completion, answer, want in compare_rows(text_cases):
        templated = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        got = reward(templated, completion, [101, 102, 103], [7, 8], **areal_row(prompt, answer))
        assert type(got) is float and got == logit(tiny, templated, completion, answer)
        # The answer as the fifth positional argument, as the documented signature allows.
        assert reward(templated, completion, [101], [7], answer) == got
        exact = by_messages(templated, completion, [101], [7], **areal_row(prompt, answer))
        assert exact == logit(tiny, prompt, completion, answer) and abs(exact - want) <= 2 * logit_tolerance(want)
    with pytest.raises(ValueError, match="no reference"):
        reward("prompt", "completion", [1], [2], messages=[{"role": "user", "content": "prompt"}])
    with pytest.raises(TypeError, match="AReaL's prompt_ids"):
        reward("prompt", ["a", "b"], "a reference in the wrong place")  # else ranked as a group, silently


QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def qwen_prompt(prompt):
    """Qwen2.5's chat template (its default system message), add_generation_prompt=True."""
    return (f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
            f"<|im_start|>assistant\n")


def llama3_prompt(prompt):
    """Llama 3's chat template (no system message), add_generation_prompt=True."""
    return (f"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
            f"<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_strip_chat_template_scores_the_prompt_and_answer_without_markup(tiny, text_cases):
    # AReaL passes the chat-templated prompt (areal/workflow/rlvr.py: prompt_str); a completion decoded with
    # its special tokens ends with the end of turn and the EOS. With strip_chat_template the reward is the
    # one of the plain prompt (a system message a line before it, as pairrm serve's /classify puts it).
    stripping = pairrm.reward_function(TINY, threads=2, strip_chat_template="auto", eos_strings=["<pad>"])
    for prompt, completion, answer, _ in compare_rows(text_cases):
        want_qwen = logit(tiny, QWEN_SYSTEM + "\n" + prompt, completion, answer)
        got = stripping(qwen_prompt(prompt), completion + "<|im_end|><|endoftext|>", [1], [2], answer=answer)
        assert got == want_qwen
        got = stripping(llama3_prompt(prompt), completion + "<|eot_id|><pad>", [1], [2], answer=answer)
        assert got == logit(tiny, prompt, completion, answer)
        # trl's batch form, and the same templated call without the option (markup scored as text).
        batch = stripping(prompts=[qwen_prompt(prompt)], completions=[completion + "<|im_end|>"], reference=[answer])
        assert batch == [want_qwen]
    prompt, completion, answer, _ = compare_rows(text_cases)[0]
    plain = pairrm.reward_function(TINY, threads=2)
    assert plain(qwen_prompt(prompt), completion + "<|im_end|>", answer=answer) != \
        logit(tiny, QWEN_SYSTEM + "\n" + prompt, completion, answer)
    # A multi-turn prompt is the conversation it holds, as a list of messages would be.
    turns = ("<|im_start|>user\nName a prime.<|im_end|>\n<|im_start|>assistant\n7<|im_end|>\n"
             "<|im_start|>user\nAnother one?<|im_end|>\n<|im_start|>assistant\n")
    conversation = [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"},
                    {"role": "user", "content": "Another one?"}]
    assert stripping(turns, "11", answer="13") == plain(conversation, "11", answer="13")
    with pytest.raises(ValueError, match="strip_chat_template"):
        pairrm.reward_function(TINY, strip_chat_template="mistral")
    with pytest.raises(TypeError, match="eos_strings"):
        pairrm.reward_function(TINY, strip_chat_template="auto", eos_strings="</s>")


AREAL_PROCESS_POOL = """
import asyncio, multiprocessing, os, sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import get_origin
import pairrm, pairrm.judge

reward = pairrm.reward_function({model!r}, threads=2)  # 2: a team of OpenMP threads in the worker
if {call_in_parent!r}:
    reward("warm-up", "in the parent", answer="before the fork")
loaded_in_parent = len(pairrm.judge._shared)
# areal/api/reward_api.py AsyncRewardWrapper: __init__ creates ProcessPoolExecutor(max_workers=...) with the
# default start method (fork on Linux before Python 3.14; named here so the test does not depend on it), and
# __call__ runs loop.run_in_executor(executor, partial(self.reward_fn, *args, **kwargs)) under
# asyncio.wait_for(..., timeout=self.timeout_seconds).
executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))

async def areal_call(*args, **kwargs):
    loop = asyncio.get_event_loop()
    return await asyncio.wait_for(loop.run_in_executor(executor, partial(reward, *args, **kwargs)), timeout=120)

try:
    value, error = asyncio.run(areal_call({prompt!r}, {completion!r}, [1, 2], [3], answer={answer!r})), None
except Exception as e:
    value, error = None, f"{{type(e).__name__}}: {{e}}"
for process in list(executor._processes.values()):  # a hung worker would block shutdown and outlive the test
    process.kill()
report(value=value, error=error, loaded_in_parent=loaded_in_parent)
sys.stdout.flush()
os._exit(0)
"""


def test_areal_runs_the_reward_in_forked_worker_processes(tiny, tmp_path, text_cases):
    """AReaL pickles the reward into a process pool on every call: the function must pickle without its model,
    load it in the worker, and not load it in the parent (OpenMP hangs in a child forked after it ran)."""
    prompt, completion, answer, _ = compare_rows(text_cases)[0]
    code = AREAL_PROCESS_POOL.format(model=TINY, call_in_parent=False, prompt=prompt, completion=completion,
                                     answer=answer)
    got = run_snippet(code, torch=False, hub=tmp_path)
    assert got["error"] is None and got["loaded_in_parent"] == 0
    assert got["value"] == logit(tiny, prompt, completion, answer)


def test_a_worker_forked_after_the_parent_loaded_raises_instead_of_hanging(tmp_path):
    code = AREAL_PROCESS_POOL.format(model=TINY, call_in_parent=True, prompt="p", completion="c", answer="a")
    got = run_snippet(code, torch=False, hub=tmp_path)
    assert got["loaded_in_parent"] == 1 and got["value"] is None
    assert got["error"].startswith("RuntimeError: pairrm: this process was forked")


def test_pickling(reward, tiny):
    again = pickle.loads(pickle.dumps(reward))
    assert again.__name__ == "pairrm_reward" and again("p", "c", answer="a") == logit(tiny, "p", "c", "a")
    with pytest.raises(TypeError, match="cannot be sent to another process"):
        pickle.dumps(pairrm.reward_function(blender=tiny))


# -- verifiers --------------------------------------------------------------------------------------------------------

class VerifiersMessage:
    """verifiers' messages (verifiers/legacy/types.py: SystemMessage, UserMessage, AssistantMessage, TextMessage,
    CustomBaseModel): pydantic objects with attributes and dict-style access, not dicts."""

    def __init__(self, role, content, **extra):
        self.role, self.content = role, content
        self.__dict__.update(extra)

    def __getitem__(self, key):
        return getattr(self, key)

    def get(self, key, default=None):
        return getattr(self, key, default)

    def __contains__(self, key):
        return hasattr(self, key)


def verifiers_is_group_func(func):
    # verifiers/legacy/rubrics/rubric.py Rubric._is_group_func (verifiers/rubrics/rubric.py before the move)
    sig = inspect.signature(func)
    group_indicators = {"states", "prompts", "completions", "answers", "tasks", "infos"}
    return_annotation = sig.return_annotation
    returns_list = return_annotation is list or get_origin(return_annotation) is list
    return bool(set(sig.parameters) & group_indicators) or returns_list


def verifiers_score_rollout(func, state, parser="a vf.Parser"):
    # verifiers/legacy/rubrics/rubric.py Rubric._call_individual_reward_func with score_objects(state): a
    # function with **kwargs gets every object; the result goes through float(). (verifiers catches an
    # exception there, logs it and scores 0.0: called directly here, so that the test sees it.)
    assert not verifiers_is_group_func(func)  # else verifiers would call it once per group, with prompts=...
    merged = {"prompt": state["prompt"], "completion": state["completion"], "answer": state.get("answer", ""),
              "state": state, "info": state.get("info", {}), "parser": parser, "task": None}
    sig = inspect.signature(func)
    assert any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return float(func(**merged))


def test_verifiers_rubric_call(reward, tiny, text_cases):
    for prompt, completion, answer, _ in compare_rows(text_cases):
        system = "You are a helpful assistant."
        state = {"prompt": [VerifiersMessage("system", system), VerifiersMessage("user", prompt)],
                 "completion": [VerifiersMessage("assistant", completion, tool_calls=None)],
                 "answer": answer, "info": {}}
        rendered = f"System: {system}\n\nUser: {prompt}\n\n"  # trl's rendering of several messages
        assert verifiers_score_rollout(reward, state) == logit(tiny, rendered, completion, answer)
        # A string prompt becomes [TextMessage(content=prompt)] (verifiers' normalize_messages).
        state["prompt"] = [VerifiersMessage("text", prompt)]
        assert verifiers_score_rollout(reward, state) == logit(tiny, prompt, completion, answer)
    state = {"prompt": [VerifiersMessage("user", "q")], "completion": [VerifiersMessage("assistant", "a")]}
    with pytest.raises(ValueError, match="no reference"):  # no answer column: answer=""
        verifiers_score_rollout(reward, state)


def test_verifiers_group_function_from_the_docs(reward, tiny, text_cases):
    # docs/rl-frameworks.md: without answers, a group function; verifiers/legacy/rubrics/rubric.py
    # Rubric._call_group_reward_func calls it with group_score_objects(states): prompts=, completions=,
    # answers=, states=, tasks=, infos=, and the class objects.
    def pairrm_group(prompts, completions, **kwargs):
        return reward(prompts, completions)

    assert verifiers_is_group_func(pairrm_group)
    case = group_cases(text_cases)[0]
    prompts = [[VerifiersMessage("user", case["source"])] for _ in case["candidates"]]
    completions = [[VerifiersMessage("assistant", c)] for c in case["candidates"]]
    got = pairrm_group(prompts=prompts, completions=completions, answers=[""] * len(prompts), states=[],
                       tasks=[None] * len(prompts), infos=[{}] * len(prompts), parser="a vf.Parser")
    assert got == tiny.rank([case["source"]], [case["candidates"]], return_scores=True)[0].tolist()


def test_verifiers_content_parts_and_tool_turns(reward, tiny):
    parts = [VerifiersMessage("user", [{"type": "text", "text": "Describe "}, {"type": "text", "text": "it."}])]
    turns = [VerifiersMessage("assistant", None, tool_calls=[{"id": "1", "name": "look", "arguments": "{}"}]),
             VerifiersMessage("tool", "a cat", tool_call_id="1"), VerifiersMessage("assistant", "A cat.")]
    got = verifiers_score_rollout(reward, {"prompt": parts, "completion": turns, "answer": "A dog."})
    assert got == logit(tiny, "Describe it.", "Assistant: \n\nTool: a cat\n\nAssistant: A cat.\n\n", "A dog.")
    image = [VerifiersMessage("user", [{"type": "image_url", "image_url": {"url": "x.png"}}])]
    with pytest.raises(TypeError, match="'image_url' content part"):
        verifiers_score_rollout(reward, {"prompt": image, "completion": "a", "answer": "b"})


# -- NeMo-RL -----------------------------------------------------------------------------------------------------------

def nemo_message_log(prompt, response):
    """nemo_rl/data/interfaces.py LLMMessageLogType: OpenAI-style messages carrying their token ids."""
    return [{"role": "user", "content": prompt, "token_ids": [1, 2]},
            {"role": "assistant", "content": response, "token_ids": [3]}]


def test_nemo_rl_environment_step(reward, tiny, text_cases):
    # NeMo-RL has no fn(prompt, response) hook: rewards come from an environment's
    # step(message_log_batch, metadata) (nemo_rl/environments/interfaces.py EnvironmentInterface), which takes
    # the assistant's text from each log as nemo_rl/environments/vlm_environment.py VLMEnvironment.step does
    # and the reference from metadata["ground_truth"]. A PairRM environment calls the reward per sample...
    rows = compare_rows(text_cases)
    logs = [nemo_message_log(p, c) for p, c, _, _ in rows]
    metadata = [{"ground_truth": ref} for _, _, ref, _ in rows]
    for log, meta, (p, c, ref, _) in zip(logs, metadata, rows, strict=True):
        response = "".join(m["content"] for m in log if m["role"] == "assistant")
        prompt = [m for m in log if m["role"] != "assistant"]
        assert reward(prompt, response, reference=meta["ground_truth"]) == logit(tiny, p, c, ref)
    # ... or once for the step's batch, where GRPO's generations of a prompt are ranked as their group.
    case = group_cases(text_cases)[0]
    logs = [nemo_message_log(case["source"], c) for c in case["candidates"]]
    got = reward([log[:-1] for log in logs], [log[-1]["content"] for log in logs])
    assert got == tiny.rank([case["source"]], [case["candidates"]], return_scores=True)[0].tolist()


# -- verl ---------------------------------------------------------------------------------------------------------------

VERL_FILE = str(pathlib.Path(pairrm.verl.__file__))


def verl_custom_reward_fn(path, name, reward_kwargs=None):
    """verl/trainer/ppo/reward.py get_custom_reward_fn with verl/utils/import_utils.py load_module's file branch:
    the file is executed under a made-up module name, and the function wrapped with the config's
    reward_kwargs (custom_reward_function.reward_kwargs), which take precedence over the call's."""
    spec = importlib.util.spec_from_file_location(f"custom_module_{hash(os.path.abspath(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    raw_fn = getattr(module, name)
    assert not inspect.iscoroutinefunction(raw_fn) and module is not pairrm.verl

    def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
        return raw_fn(*args, **{**kwargs, **extra_kwargs})

    return partial(_call_with_kwargs, raw_fn, dict(reward_kwargs or {}))


def verl_extra_info(question, answer, idx=0):
    """examples/data_preprocess/gsm8k.py: extra_info = {split, index, answer, question}; the naive reward
    manager adds num_turns and rollout_reward_scores before the call."""
    return {"split": "train", "index": idx, "answer": answer, "question": question, "num_turns": None,
            "rollout_reward_scores": {}}


def test_verl_naive_reward_manager_call(tiny, text_cases, monkeypatch):
    monkeypatch.setenv("PAIRRM_MODEL", TINY)  # the default model, as for reward_function()
    compute_score = verl_custom_reward_fn(VERL_FILE, "compute_score")
    for prompt, completion, ref, want in compare_rows(text_cases):
        # verl/workers/reward_manager/naive.py NaiveRewardManager.__call__ (and the reward loop's
        # verl/experimental/reward_loop/reward_manager/naive.py run_single, from a thread pool):
        score = compute_score(data_source="openai/gsm8k", solution_str=completion, ground_truth=ref,
                              extra_info=verl_extra_info(prompt, "a worked solution"))
        assert type(score) is float and score == logit(tiny, prompt, completion, ref)
        assert abs(score - want) <= 2 * logit_tolerance(want)
        # verl/workers/reward_manager/prime.py: partial(evaluation_func, task, completion, reference, extra_info)
        assert compute_score("openai/gsm8k", completion, ref, verl_extra_info(prompt, "")) == score


def test_verl_reward_kwargs_and_a_file_of_ones_own(tiny, tmp_path):
    extra = {"problem": "What is 2+2?", "solution": "2 and 2 make 4.", "index": 3}
    want = logit(tiny, "What is 2+2?", "4", "2 and 2 make 4.")
    configured = verl_custom_reward_fn(VERL_FILE, "compute_score",
                                       {"model": TINY, "prompt_key": "problem", "reference": "solution"})
    assert configured(data_source="d", solution_str="4", ground_truth="ignored", extra_info=extra) == want
    own = tmp_path / "my_reward.py"
    own.write_text("import pairrm.verl\n"
                   f"compute_score = pairrm.verl.make_compute_score({TINY!r}, prompt_key='problem', "
                   "reference='solution')\n")
    mine = verl_custom_reward_fn(str(own), "compute_score")
    assert mine(data_source="d", solution_str="4", ground_truth="", extra_info=extra) == want
    with pytest.raises(ValueError, match="batch=True"):
        pairrm.verl.make_compute_score(reference=None)


def test_verl_bad_input_raises(monkeypatch):
    monkeypatch.setenv("PAIRRM_MODEL", TINY)
    compute_score = verl_custom_reward_fn(VERL_FILE, "compute_score")
    call = dict(data_source="d", solution_str="4", ground_truth="four", extra_info=verl_extra_info("2+2?", ""))
    with pytest.raises(KeyError, match="extra_info has no 'question'"):
        compute_score(**{**call, "extra_info": {"split": "train", "index": 0, "num_turns": None}})
    with pytest.raises(KeyError, match="extra_info has no 'question'"):
        compute_score(**{**call, "extra_info": None})
    for empty in ("", None):
        with pytest.raises(ValueError, match="no reference"):
            compute_score(**{**call, "ground_truth": empty})
    with pytest.raises(TypeError, match="ground_truth must be a str"):
        compute_score(**{**call, "ground_truth": ["4", "four"]})
    with pytest.raises(TypeError, match="solution_str must be a str"):
        compute_score(**{**call, "solution_str": [4]})


def test_verl_batch_reward_manager_call(tiny, text_cases):
    # verl/workers/reward_manager/batch.py BatchRewardManager.verify (and the reward loop's batch manager):
    #   self.compute_score(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=..., **reward_kwargs)
    compute_score_batch = verl_custom_reward_fn(VERL_FILE, "compute_score_batch", {"model": TINY})
    rows = compare_rows(text_cases)
    got = compute_score_batch(data_sources=["d"] * len(rows), solution_strs=[r[1] for r in rows],
                              ground_truths=[r[2] for r in rows],
                              extra_infos=[verl_extra_info(r[0], "", i) for i, r in enumerate(rows)])
    assert got == [logit(tiny, *r[:3]) for r in rows]
    # No ground truths (verl's full_hh_rlhf-style data): each prompt's responses ranked as their group,
    # interleaved as GRPO's n rollouts per prompt arrive.
    cases = group_cases(text_cases)[:2]
    order = [(k, j) for j in range(5) for k in range(2) if j < len(cases[k]["candidates"])]
    scores = compute_score_batch(data_sources=["d"] * len(order),
                                 solution_strs=[cases[k]["candidates"][j] for k, j in order],
                                 ground_truths=[None] * len(order),
                                 extra_infos=[verl_extra_info(cases[k]["source"], "") for k, _ in order])
    ranked = [tiny.rank([c["source"]], [c["candidates"]], return_scores=True)[0].tolist() for c in cases]
    assert scores == [ranked[k][j] for k, j in order]
    with pytest.raises(ValueError, match=r"responses \[1\] have no reference"):
        compute_score_batch(data_sources=["d", "d"], solution_strs=["a", "b"], ground_truths=["r", ""],
                            extra_infos=[verl_extra_info("q", ""), verl_extra_info("q", "")])
    with pytest.raises(ValueError, match="2 solution_strs, 1 ground_truths"):
        compute_score_batch(data_sources=["d"], solution_strs=["a", "b"], ground_truths=["r"],
                            extra_infos=[verl_extra_info("q", "")])


def test_verl_loads_the_model_once_per_process(tmp_path, monkeypatch):
    """The file loaded by path twice (verl loads it in each reward worker), pairrm.verl itself and a reward
    function, called from several threads as verl's reward loop does: one load of the model."""
    model = tmp_path / "tiny"
    model.symlink_to(TINY)  # a path no other test used, so the model is not in the cache yet
    loads = []

    class CountingBlender(pairrm.Blender):
        def loadranker(self, *args, **kwargs):
            loads.append(args[0])
            super().loadranker(*args, **kwargs)

    monkeypatch.setattr(pairrm.judge, "Blender", CountingBlender)
    monkeypatch.setenv("PAIRRM_MODEL", str(model))
    scorers = [verl_custom_reward_fn(VERL_FILE, "compute_score"), verl_custom_reward_fn(VERL_FILE, "compute_score"),
               pairrm.verl.compute_score]
    results = []

    def work(score):
        results.append(score(data_source="d", solution_str="4", ground_truth="four",
                             extra_info=verl_extra_info("2+2?", "")))

    threads = [threading.Thread(target=work, args=(s,)) for s in scorers * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(set(results)) == 1 and loads == [str(model)]
    assert pairrm.reward_function(str(model))("2+2?", "4", answer="four") == results[0] and len(loads) == 1
