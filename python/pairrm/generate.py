"""Sampling n candidates per prompt for ``Blender.n_generate`` / ``best_of_n_generate``, without importing a
deep-learning framework: a Hugging Face model and tokenizer passed in by the caller (duck-typed: whatever has
``generate`` and a callable tokenizer), a ``vllm.LLM`` when vllm is already imported, or an OpenAI-compatible
server (``OpenAIEndpoint``, or its base URL as a string).
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Sequence

from . import _checks

SAMPLING_MODES = ("top_k_sampling", "top_p_sampling", None)


def sampling_kwargs(sampling_mode: Optional[str], generate_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """llm-blender's defaults per sampling mode (top_k 50 / top_p 1.0, temperature 0.7, do_sample)."""
    kw = dict(generate_kwargs)
    if sampling_mode == "top_k_sampling":
        kw["do_sample"] = True
        kw["top_k"] = kw.get("top_k", 50)
        kw["temperature"] = kw.get("temperature", 0.7)
    elif sampling_mode == "top_p_sampling":
        kw["do_sample"] = True
        kw["top_p"] = kw.get("top_p", 1.0)
        kw["temperature"] = kw.get("temperature", 0.7)
    elif sampling_mode is not None:
        raise ValueError(f"Unknown sampling_mode: {sampling_mode}")
    return kw


class OpenAIEndpoint:
    """An OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, TGI, OpenAI) as the ``model`` of
    ``n_generate`` / ``best_of_n_generate``.

    Args:
        base_url: the API base, e.g. "http://localhost:8000/v1".
        model: the request's ``model`` (left out when None; most local servers serve one model).
        api_key: sent as a bearer token; default ``$OPENAI_API_KEY``.
        chat: True (default) posts each prompt as one user message to ``/chat/completions``; False posts the
            raw text to ``/completions`` (for prompts already formatted with a chat template).
        concurrency: prompts in flight at once.
        timeout: seconds per request.
    """

    def __init__(self, base_url: str, model: Optional[str] = None, api_key: Optional[str] = None,
                 chat: bool = True, concurrency: int = 4, timeout: float = 600.0):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as 'http://localhost:8000/v1', not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.chat = chat
        self.concurrency = _checks.positive_int("concurrency", concurrency)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"OpenAIEndpoint({self.base_url!r}, model={self.model!r}, chat={self.chat})"

    def _post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode("utf-8"),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            raise RuntimeError(f"{self.base_url}{path}: HTTP {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"{self.base_url}{path}: {e.reason}") from None

    def sample(self, prompt: str, n: int, params: Dict[str, Any]) -> List[str]:
        """n samples of one prompt. Servers that return fewer choices than asked (llama.cpp's server and
        Ollama ignore ``n``) are asked again for the rest."""
        path = "/chat/completions" if self.chat else "/completions"
        out: List[str] = []
        while len(out) < n:
            body = dict(params, n=n - len(out))
            if self.model is not None:
                body["model"] = self.model
            if self.chat:
                body["messages"] = [{"role": "user", "content": prompt}]
            else:
                body["prompt"] = prompt
            choices = sorted(self._post(path, body).get("choices") or [], key=lambda c: c.get("index", 0))
            if not choices:
                raise RuntimeError(f"{self.base_url}{path} returned no choices")
            for c in choices[: n - len(out)]:
                out.append(c["message"]["content"] if self.chat else c["text"])
        return out

    def generate(self, prompts: Sequence[str], n: int, generate_kwargs: Dict[str, Any]) -> List[List[str]]:
        params = endpoint_params(generate_kwargs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self.sample(p, n, params), prompts))


# generate() keyword arguments that have an OpenAI request field; the rest are Hugging Face-only (num_beams,
# output_scores, ...) and are not sent.
_ENDPOINT_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed",
                    "stop": "stop", "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
                    "repetition_penalty": "repetition_penalty", "min_p": "min_p", "max_tokens": "max_tokens",
                    "max_new_tokens": "max_tokens"}


def endpoint_params(generate_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    params = {field: generate_kwargs[k] for k, field in _ENDPOINT_FIELDS.items() if k in generate_kwargs}
    if generate_kwargs.get("do_sample") is False:  # greedy, as transformers does without sampling
        params["temperature"] = 0.0
    return params


def _to_device(value: Any, device: Any) -> Any:
    return value.to(device) if device is not None and hasattr(value, "to") else value


def hf_generate(model: Any, tokenizer: Any, prompts: Sequence[str], n: int, batch_size: int,
                generate_kwargs: Dict[str, Any]) -> List[List[str]]:
    """llm-blender's transformers loop: batches of prompts, n return sequences each, the prompt cut off the
    output of decoder-only models, decoded without special tokens."""
    kw = dict(generate_kwargs)
    if "max_new_tokens" not in kw:  # the tokenizer's model_max_length bounds the whole sequence
        kw["max_length"] = kw.get("max_length", getattr(tokenizer, "model_max_length", None))
    kw.update(num_return_sequences=n, output_scores=True, return_dict_in_generate=True)
    device = getattr(model, "device", None)
    out: List[List[str]] = []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start:start + batch_size])
        encodings = tokenizer(batch, return_tensors="pt", padding=True, truncation=True)
        encodings = {k: _to_device(v, device) for k, v in dict(encodings).items()}
        generated = model.generate(**encodings, **kw)
        ids = generated.sequences
        prompt_len = encodings["input_ids"].shape[1]
        if ids.shape[1] == prompt_len + len(generated.scores):  # decoder-only: the prompt comes back too
            ids = ids[:, prompt_len:]
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        out.extend(texts[i:i + n] for i in range(0, len(texts), n))
    return out


def vllm_generate(model: Any, tokenizer: Any, prompts: Sequence[str], n: int,
                  generate_kwargs: Dict[str, Any]) -> List[List[str]]:
    """llm-blender's vLLM branch: one SamplingParams, every known field copied from the generate kwargs."""
    vllm = sys.modules["vllm"]
    default_max = getattr(tokenizer, "model_max_length", None)
    max_tokens = generate_kwargs.get("max_tokens", generate_kwargs.get("max_new_tokens",
                                                                        generate_kwargs.get("max_length", default_max)))
    params = vllm.SamplingParams(n=n, max_tokens=max_tokens)
    for k, v in generate_kwargs.items():
        if hasattr(params, k):
            setattr(params, k, v)
    return [[o.text for o in output.outputs] for output in model.generate(list(prompts), sampling_params=params)]


def is_vllm_llm(model: Any) -> bool:
    vllm = sys.modules.get("vllm")  # only when the caller imported it: no import here
    return vllm is not None and isinstance(model, getattr(vllm, "LLM", ()))


def n_generate(model: Any, tokenizer: Any, prompts: Sequence[str], n: int, batch_size: int,
               generate_kwargs: Dict[str, Any]) -> List[List[str]]:
    if isinstance(model, str):
        model = OpenAIEndpoint(model, model=tokenizer if isinstance(tokenizer, str) else None)
    if isinstance(model, OpenAIEndpoint):
        return model.generate(prompts, n, generate_kwargs)
    if is_vllm_llm(model):
        return vllm_generate(model, tokenizer, prompts, n, generate_kwargs)
    if callable(getattr(model, "generate", None)) and callable(tokenizer):
        return hf_generate(model, tokenizer, prompts, n, batch_size, generate_kwargs)
    raise TypeError("model must be a Hugging Face model with .generate() (with its tokenizer), a vllm.LLM, a "
                    f"pairrm.OpenAIEndpoint or an endpoint URL, not {type(model).__name__}")
