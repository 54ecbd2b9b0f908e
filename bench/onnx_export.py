#!/usr/bin/env python3
"""Exports the PyTorch baseline's network (bench/pytorch_baseline.py, op for op Hugging Face's DebertaV2 and
llm-blender's head) to ONNX for the ONNX Runtime column of BENCHMARKS.md, and writes the benchmark's rows with
PyTorch's logits beside it, so that bench/ort_bench.mjs times ONNX Runtime on exactly those rows and checks
its logits against PyTorch's.

    scripts/setup.sh --bench                          # python3-torch (Debian), OpenBLAS (pthread), onnxruntime-node
    /usr/bin/python3 bench/onnx_export.py /tmp/pairrm-full /tmp/pairrm-onnx --tokens 300 --pairs 8
    node bench/ort_bench.mjs /tmp/pairrm-onnx --threads 2

The graph takes one row: `ids` (int64 [length], dynamic) and `positions` (int64 [3]: the [CLS] before the
source and the two candidates' prefix tokens) and returns the row's logit (float32 [1]), as `pairrm bench`
and the PyTorch baseline run rows one by one (the network has no padding: a batch of rows of different
lengths would be padded work). Opset 17. Writes OUT/pairrm.onnx (weights in OUT/pairrm.onnx.data, the
protobuf limit is 2 GB) and OUT/rows_<workload>.json ({"rows": [{"ids", "positions"}], "pytorch_logits",
"pytorch_seconds_total", ...}).
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_baseline as base  # noqa: E402


def relative_positions(n, span, max_position):
    """build_relative_position of the baseline with the length as a traced size (dynamic in the graph)."""
    ids = torch.arange(n)
    rel = ids[:, None] - ids[None, :]
    if span > 0 and max_position > 0:
        rel = base.log_bucket_position(rel, span, max_position)
    return rel.to(torch.long)


class Exported(torch.nn.Module):
    """The baseline's forward with tensors where it used Python values (length, prefix positions)."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, ids, positions):
        m = self.m
        x = m.emb_ln(m.word_embeddings[ids])
        rel = m.rel_ln(m.rel_embeddings[: 2 * m.span])
        relative_pos = relative_positions(ids.shape[0], m.span, m.max_position)
        for layer in m.layers:
            x = layer(x, rel, relative_pos, m.span)
        picked = x.index_select(0, positions)
        s, c1, c2 = picked[0], picked[1], picked[2]
        left = m.head2(torch.tanh(m.head1(torch.cat([s, c1]))))
        right = m.head2(torch.tanh(m.head1(torch.cat([s, c2]))))
        return (left - right).mean().reshape(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    base.add_workload_arguments(ap)
    ap.add_argument("--no-export", action="store_true", help="only the rows and PyTorch's logits (graph exists)")
    args = ap.parse_args()
    args.pairs = args.pairs or (64 if args.mixed else 3)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    c = json.load(open(os.path.join(args.model, "config.json")))
    model = Exported(base.PairRM(args.model).eval()).eval()
    rows = base.synthetic_rows(args, c["vocab_size"], (c["source_prefix_id"], c["cand1_prefix_id"], c["cand2_prefix_id"]))
    as_inputs = [(torch.from_numpy(ids).long(), torch.tensor(pos, dtype=torch.long)) for ids, pos in rows]
    graph = os.path.join(args.out, "pairrm.onnx")
    with torch.no_grad():
        if not args.no_export:
            t0 = time.perf_counter()
            torch.onnx.export(model, as_inputs[0], graph, input_names=["ids", "positions"], output_names=["logit"],
                              dynamic_axes={"ids": {0: "length"}}, opset_version=17, do_constant_folding=True)
            print(f"exported {graph} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        model(*as_inputs[0])  # warm-up, as `pairrm bench` does
        t1 = time.perf_counter()
        logits = [float(model(*x)) for x in as_inputs]
        run_s = time.perf_counter() - t1
    workload = "mixed" if args.mixed else f"{args.pairs}x{args.tokens}"
    with open(os.path.join(args.out, f"rows_{workload}.json"), "w") as f:
        json.dump({"workload": workload, "threads": args.threads,
                   "rows": [{"ids": ids.tolist(), "positions": list(pos)} for ids, pos in rows],
                   "pytorch": f"pytorch {torch.__version__}", "pytorch_logits": logits,
                   "pytorch_seconds_total": run_s, "pytorch_seconds_per_pair": run_s / len(rows)}, f)
    print(json.dumps({"workload": workload, "pytorch_seconds_per_pair": run_s / len(rows),
                      "max_abs_logit": max(abs(v) for v in logits) if logits else math.nan}))


if __name__ == "__main__":
    sys.exit(main())
