#!/usr/bin/env python3
"""The PyTorch baseline of `pairrm bench`: PairRM's forward pass in PyTorch, op for op as Hugging Face's
DebertaV2 (transformers 4.3x, modeling_deberta_v2.py) and llm-blender's PairRM head compute it, on the same
synthetic rows as `pairrm bench` (same lengths; token ids do not change the cost).

Debian 12 packages PyTorch 1.13 (OpenBLAS), but not transformers or safetensors, so this file carries the
model itself (nn.Linear, torch.gather of the c2p/p2c scores, softmax, LayerNorm, exact GELU: the same
library calls HF makes) and reads the checkpoint with numpy. `--check` also runs the rows through
pairrm.cpp's Python module and reports the largest logit difference: an independent full-size check of the
engine, which the tiny test fixtures cannot give.

    scripts/setup.sh --bench                    # python3-torch and OpenBLAS (pthread)
    export PYTHONPATH=build/python              # for --check: pairrm.cpp's module
    OPENBLAS_CORETYPE=SkylakeX python3 bench/pytorch_baseline.py /tmp/pairrm-full --tokens 300 --pairs 4 --threads 2 [--check]
    OPENBLAS_CORETYPE=SkylakeX python3 bench/pytorch_baseline.py /tmp/pairrm-full --mixed --threads 2

OPENBLAS_CORETYPE: Debian's OpenBLAS 0.3.21 does not recognise some AVX-512 CPUs (the benchmark VM: "Core:
Prescott" with OPENBLAS_VERBOSE=2, SSE3 kernels, 29 GFLOP/s) and must be told; SkylakeX gives 140 GFLOP/s
there. Leave it unset where OpenBLAS detects the CPU itself.
"""
import argparse
import json
import math
import os
import random
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn


# The weights are read-only views of the memory-mapped file, which is what we want (no 1.7 GB copy).
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


def load_safetensors(path):
    """name -> float32 tensor (memory-mapped; F32 only, which `pairrm init-random` writes)."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise SystemExit(f"{name}: dtype {t['dtype']}, this script reads F32 checkpoints only")
        start, end = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype=np.float32).reshape(t["shape"]))
    return out


def log_bucket_position(relative_pos, bucket_size, max_position):
    """HF make_log_bucket_position."""
    sign = torch.sign(relative_pos)
    mid = bucket_size // 2
    abs_pos = torch.where((relative_pos < mid) & (relative_pos > -mid), torch.tensor(mid - 1).type_as(relative_pos),
                          torch.abs(relative_pos))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, relative_pos.type_as(log_pos), log_pos * sign)


def build_relative_position(n, bucket_size, max_position):
    ids = torch.arange(n)
    rel = ids[:, None] - ids[None, :]
    if bucket_size > 0 and max_position > 0:
        rel = log_bucket_position(rel, bucket_size, max_position)
    return rel.to(torch.long)


class Layer(nn.Module):
    def __init__(self, H, I, heads, eps):
        super().__init__()
        self.heads = heads
        self.query_proj, self.key_proj, self.value_proj = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attn_out, self.attn_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=eps)
        self.ffn_in, self.ffn_out, self.out_ln = nn.Linear(H, I), nn.Linear(I, H), nn.LayerNorm(H, eps=eps)

    def split(self, x):  # [L, H] -> [heads, L, d] (HF transpose_for_scores with batch 1)
        return x.view(x.size(0), self.heads, -1).permute(1, 0, 2)

    def forward(self, x, rel_embeddings, relative_pos, span):
        q, k, v = self.split(self.query_proj(x)), self.split(self.key_proj(x)), self.split(self.value_proj(x))
        d = q.size(-1)
        scale = math.sqrt(d * 3)  # 1 + |{c2p, p2c}|
        scores = torch.bmm(q, k.transpose(-1, -2) / scale)
        # share_att_key: the layer's own Q/K projections of the normalised rel embeddings.
        pos_key = self.split(self.key_proj(rel_embeddings))
        pos_query = self.split(self.query_proj(rel_embeddings))
        L = x.size(0)
        c2p_pos = torch.clamp(relative_pos + span, 0, span * 2 - 1)
        c2p = torch.gather(torch.bmm(q, pos_key.transpose(-1, -2)), -1, c2p_pos.expand(self.heads, L, L))
        p2c_pos = torch.clamp(-relative_pos + span, 0, span * 2 - 1)
        p2c = torch.gather(torch.bmm(k, pos_query.transpose(-1, -2)), -1, p2c_pos.expand(self.heads, L, L)).transpose(-1, -2)
        scores = scores + c2p / scale + p2c / scale
        ctx = torch.bmm(torch.softmax(scores, -1), v).permute(1, 0, 2).reshape(L, -1)
        h = self.attn_ln(self.attn_out(ctx) + x)
        return self.out_ln(self.ffn_out(nn.functional.gelu(self.ffn_in(h))) + h)


class PairRM(nn.Module):
    def __init__(self, model_dir):
        super().__init__()
        c = json.load(open(os.path.join(model_dir, "config.json")))
        H, I, heads, eps = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"], c["layer_norm_eps"]
        self.span = c["position_buckets"]
        self.max_position = c["max_relative_positions"] if c["max_relative_positions"] > 0 else c["max_position_embeddings"]
        w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        p = "pretrained_model."
        self.word_embeddings = w[p + "embeddings.word_embeddings.weight"]
        self.emb_ln = nn.LayerNorm(H, eps=eps)
        self.rel_ln = nn.LayerNorm(H, eps=eps)
        self.rel_embeddings = w[p + "encoder.rel_embeddings.weight"]
        self.layers = nn.ModuleList(Layer(H, I, heads, eps) for _ in range(c["num_hidden_layers"]))
        self.head1, self.head2 = nn.Linear(2 * H, H), nn.Linear(H, c["n_tasks"])

        def put(module, prefix):
            module.weight.data, module.bias.data = w[prefix + ".weight"], w[prefix + ".bias"]

        put(self.emb_ln, p + "embeddings.LayerNorm")
        put(self.rel_ln, p + "encoder.LayerNorm")
        for i, layer in enumerate(self.layers):
            b = f"{p}encoder.layer.{i}."
            for name, key in [("query_proj", "attention.self.query_proj"), ("key_proj", "attention.self.key_proj"),
                              ("value_proj", "attention.self.value_proj"), ("attn_out", "attention.output.dense"),
                              ("attn_ln", "attention.output.LayerNorm"), ("ffn_in", "intermediate.dense"),
                              ("ffn_out", "output.dense"), ("out_ln", "output.LayerNorm")]:
                put(getattr(layer, name), b + key)
        put(self.head1, "head_layer.1")
        put(self.head2, "head_layer.4")

    def forward(self, ids, positions):
        x = self.emb_ln(self.word_embeddings[ids])
        rel = self.rel_ln(self.rel_embeddings[: 2 * self.span])
        relative_pos = build_relative_position(len(ids), self.span, self.max_position)
        for layer in self.layers:
            x = layer(x, rel, relative_pos, self.span)
        s, c1, c2 = (x[p] for p in positions)
        left = self.head2(torch.tanh(self.head1(torch.cat([s, c1]))))
        right = self.head2(torch.tanh(self.head1(torch.cat([s, c2]))))
        return (left - right).mean().item()


def synthetic_rows(args, vocab, prefixes):
    """Rows of `pairrm bench`'s shape: a third source, the rest split between the candidates."""
    rng = random.Random(1234)
    rows = []
    for i in range(args.pairs):
        n = 100 + int(900.0 * i / max(1, args.pairs - 1)) if args.mixed else args.tokens
        body = max(n, 9) - 9
        src = body // 3
        c1 = (body - src) // 2
        ids, pos = [], []
        for prefix, length in zip(prefixes, (src, c1, body - src - c1)):
            ids.append(1)
            pos.append(len(ids))
            ids += [prefix] + [rng.randrange(5, min(127999, vocab - 1) + 1) for _ in range(length)] + [2]
        rows.append((np.array(ids, dtype=np.int32), pos))
    return rows


def add_workload_arguments(ap):
    """The rows' options, as `pairrm bench` has them (also bench/onnx_export.py's)."""
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--pairs", type=int, default=0, help="default: 3, or 64 with --mixed")
    ap.add_argument("--mixed", action="store_true", help="64 rows with lengths spread over 100..1000 tokens")
    ap.add_argument("--threads", type=int, default=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    add_workload_arguments(ap)
    ap.add_argument("--check", action="store_true", help="compare the logits with pairrm.cpp (its Python module)")
    args = ap.parse_args()
    args.pairs = args.pairs or (64 if args.mixed else 3)
    torch.set_num_threads(args.threads)
    c = json.load(open(os.path.join(args.model, "config.json")))
    t0 = time.perf_counter()
    model = PairRM(args.model).eval()
    load_s = time.perf_counter() - t0
    rows = synthetic_rows(args, c["vocab_size"], (c["source_prefix_id"], c["cand1_prefix_id"], c["cand2_prefix_id"]))
    with torch.no_grad():
        model(torch.from_numpy(rows[0][0]).long(), rows[0][1])  # warm-up, as `pairrm bench` does
        t1 = time.perf_counter()
        logits = [model(torch.from_numpy(ids).long(), pos) for ids, pos in rows]
        run_s = time.perf_counter() - t1
    tokens = sum(len(ids) for ids, _ in rows)
    report = {"engine": f"pytorch {torch.__version__}", "threads": args.threads, "pairs": args.pairs,
              "tokens_per_pair": "mixed 100-1000" if args.mixed else args.tokens, "seconds_total": run_s,
              "seconds_per_pair": run_s / args.pairs, "tokens_per_s": tokens / run_s, "load_s": load_s}
    if args.check:
        import pairrm
        ours = pairrm.Model(args.model, threads=args.threads).logits(
            [{"ids": ids, "source_pos": p[0], "cand1_pos": p[1], "cand2_pos": p[2]} for ids, p in rows])
        report["max_abs_logit_difference_vs_pairrm_cpp"] = float(np.max(np.abs(np.array(logits) - ours)))
        report["max_abs_logit"] = float(np.max(np.abs(ours)))
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
