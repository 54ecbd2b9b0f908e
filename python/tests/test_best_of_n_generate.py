"""Blender.n_generate / best_of_n_generate drive the caller's generator: a Hugging Face model and tokenizer
(duck-typed stand-ins here, with torch tensors and with numpy arrays: transformers is not on Debian), a vllm.LLM,
or an OpenAI-compatible server (a local one). The samples are the fixture's rank cases, so the pick is checked
against the reference's pairwise logits."""
import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import pairrm
from conftest import require_torch

TORCH = [pytest.param(False, id="numpy"), pytest.param(True, id="torch")]


def cases_of(text_cases):
    """The README's two inputs, three samples each."""
    cases = text_cases["models"]["tiny"]["rank_cases"][:2]
    assert [len(c["candidates"]) for c in cases] == [3, 3]
    return cases


def bubble_pick(M, margin=1e-3):
    """llm-blender's single bubble pass over the given order, from the reference's matrix M[i][j] = logit(i, j)."""
    assert len(M) >= 2
    cur = 0
    for nxt in range(1, len(M)):
        s = M[cur][nxt] - M[nxt][cur]
        assert abs(s) > margin  # far from a tie, so float32 rounding cannot flip it
        cur = cur if s > 0 else nxt
    return cur


class FakeTokenizer:
    model_max_length = 77

    def __init__(self, array, prompts, samples):
        self.array, self.prompt_ids = array, {p: 10 + i for i, p in enumerate(prompts)}
        self.texts = {1000 + k: t for k, t in enumerate(samples)}
        self.calls = []

    def __call__(self, prompts, return_tensors=None, padding=False, truncation=False):
        assert (return_tensors, padding, truncation) == ("pt", True, True)
        self.calls.append(list(prompts))
        ids = [[1, self.prompt_ids[p]] for p in prompts]
        return {"input_ids": self.array(ids), "attention_mask": self.array([[1, 1] for _ in ids])}

    def batch_decode(self, ids, skip_special_tokens=False):
        assert skip_special_tokens and ids.shape[1] == 1  # the prompt was cut off (decoder-only)
        return [self.texts[int(row[0])] for row in ids]


class FakeModel:
    """Returns, for prompt p, the samples of p in order: prompt ids + one new token per sequence."""

    def __init__(self, array, device, samples_of):
        self.array, self.device, self.samples_of, self.kwargs = array, device, samples_of, []

    def generate(self, input_ids, attention_mask, **kw):
        self.kwargs.append(kw)
        n = kw["num_return_sequences"]
        seqs = []
        for row in input_ids.tolist():
            tokens = self.samples_of[row[1]]
            assert len(tokens) == n
            seqs.extend(row + [t] for t in tokens)
        return types.SimpleNamespace(sequences=self.array(seqs), scores=(self.array([[0.0]]),))


def hf_pair(torch, text_cases):
    if torch:
        require_torch()
        import torch as t
        array, device = t.tensor, t.device("cpu")
    else:
        array, device = np.array, None
    cases = cases_of(text_cases)
    samples = [c for case in cases for c in case["candidates"]]
    tok = FakeTokenizer(array, [c["source"] for c in cases], samples)
    ids = iter(range(1000, 1000 + len(samples)))
    samples_of = {tok.prompt_ids[c["source"]]: [next(ids) for _ in c["candidates"]] for c in cases}
    return FakeModel(array, device, samples_of), tok


@pytest.mark.parametrize("torch", TORCH)
def test_best_of_n_generate_with_a_hugging_face_model(tiny, text_cases, torch):
    model, tokenizer = hf_pair(torch, text_cases)
    cases = cases_of(text_cases)
    prompts = [c["source"] for c in cases]
    best = tiny.best_of_n_generate(model, tokenizer, prompts, n=3, batch_size=1)
    assert best == [c["candidates"][bubble_pick(c["M"])] for c in cases]
    full = tiny.best_of_n_generate(model, tokenizer, prompts, n=3, pairrm_cmp_type="full")
    assert full == [c["candidates"][c["ranks"].index(1)] for c in cases]
    samples = tiny.n_generate(model, tokenizer, prompts, n=3, sampling_mode="top_k_sampling", max_new_tokens=5)
    assert samples == [c["candidates"] for c in cases]
    # llm-blender's generate arguments: sampling defaults, n sequences, the tokenizer's length bound.
    first, last = model.kwargs[0], model.kwargs[-1]
    assert first == dict(do_sample=True, top_p=1.0, temperature=0.7, max_length=77, num_return_sequences=3,
                         output_scores=True, return_dict_in_generate=True)
    assert last == dict(do_sample=True, top_k=50, temperature=0.7, max_new_tokens=5, num_return_sequences=3,
                        output_scores=True, return_dict_in_generate=True)
    assert tokenizer.calls[:2] == [[prompts[0]], [prompts[1]]]  # batch_size=1


def test_instructions_and_checks(tiny, text_cases):
    model, tokenizer = hf_pair(False, text_cases)
    cases = cases_of(text_cases)
    with pytest.raises(AssertionError, match="instructions"):  # llm-blender asserts
        tiny.n_generate(model, tokenizer, ["a", "b"], instructions=["x"])
    with pytest.raises(ValueError, match="Unknown sampling_mode"):
        tiny.n_generate(model, tokenizer, ["a"], sampling_mode="beam")
    with pytest.raises(TypeError, match="generate"):
        tiny.n_generate(object(), None, ["a"])
    # instruction + "\n" + input for the generator
    tokenizer.prompt_ids = {f"Answer:\n{c['source']}": v
                            for c, v in zip(cases, tokenizer.prompt_ids.values(), strict=True)}
    tiny.n_generate(model, tokenizer, [c["source"] for c in cases], instructions=["Answer:"] * 2, n=3)
    assert tokenizer.calls[-1] == [f"Answer:\n{c['source']}" for c in cases]


def test_vllm_llm_when_vllm_is_imported(tiny, text_cases, monkeypatch):
    cases = cases_of(text_cases)
    vllm = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, n, max_tokens):
            self.n, self.max_tokens, self.temperature, self.top_p = n, max_tokens, 1.0, 1.0

    class LLM:
        def generate(self, prompts, sampling_params):
            self.params = sampling_params
            by_prompt = {c["source"]: c["candidates"] for c in cases}
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=t) for t in by_prompt[p]])
                    for p in prompts]

    vllm.SamplingParams, vllm.LLM = SamplingParams, LLM
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    llm = LLM()
    best = tiny.best_of_n_generate(llm, FakeTokenizer(np.array, [], []), [c["source"] for c in cases], n=3,
                                   max_tokens=9)
    assert best == [c["candidates"][bubble_pick(c["M"])] for c in cases]
    assert (llm.params.n, llm.params.max_tokens, llm.params.temperature, llm.params.top_p) == (3, 9, 0.7, 1.0)


class ChatServer:
    """An OpenAI-compatible /v1/chat/completions serving the fixture's samples; one_choice mimics servers that
    ignore n (llama.cpp's server, Ollama)."""

    def __init__(self, samples, one_choice=False):
        self.samples, self.one_choice, self.bodies, self.next = samples, one_choice, [], {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append((self.path, self.headers.get("Authorization"), body))
                prompt = body["messages"][0]["content"]
                k = server.next.get(prompt, 0)
                count = 1 if server.one_choice else body["n"]
                texts = server.samples[prompt][k:k + count]
                server.next[prompt] = k + count
                data = json.dumps({"choices": [{"index": i, "message": {"role": "assistant", "content": t}}
                                               for i, t in enumerate(texts)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("one_choice", [False, True], ids=["n-choices", "one-choice-per-request"])
def test_best_of_n_generate_with_an_openai_compatible_server(tiny, text_cases, one_choice, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cases = cases_of(text_cases)
    server = ChatServer({c["source"]: c["candidates"] for c in cases}, one_choice=one_choice)
    try:
        best = tiny.best_of_n_generate(server.url, "served-model", [c["source"] for c in cases], n=3,
                                       max_new_tokens=32, num_beams=4)
    finally:
        server.close()
    assert best == [c["candidates"][bubble_pick(c["M"])] for c in cases]
    assert len(server.bodies) == (6 if one_choice else 2)
    path, auth, body = server.bodies[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert {k: body[k] for k in ("model", "n", "temperature", "top_p", "max_tokens")} == \
        dict(model="served-model", n=3, temperature=0.7, top_p=1.0, max_tokens=32)
    assert "num_beams" not in body  # Hugging Face-only arguments are not sent


def test_openai_endpoint_object_and_errors(tiny, text_cases):
    cases = cases_of(text_cases)
    server = ChatServer({c["source"]: c["candidates"] for c in cases})
    try:
        endpoint = pairrm.OpenAIEndpoint(server.url, concurrency=2)
        samples = tiny.n_generate(endpoint, None, [c["source"] for c in cases], n=3, do_sample=False,
                                  sampling_mode=None)
        assert samples == [c["candidates"] for c in cases]
        assert "model" not in server.bodies[0][2] and server.bodies[0][2]["temperature"] == 0.0
    finally:
        server.close()
    with pytest.raises(ValueError, match="http"):
        pairrm.OpenAIEndpoint("localhost:8000")
    with pytest.raises(ConnectionError):
        tiny.n_generate(pairrm.OpenAIEndpoint(server.url, timeout=5), None, ["x"], n=1)
