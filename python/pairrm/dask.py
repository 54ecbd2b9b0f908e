"""Score JSONL datasets on a Dask cluster (``dask.distributed``): a laptop's processes or many hosts.

    from dask.distributed import Client
    import pairrm.dask
    client = Client("tcp://scheduler:8786")            # or Client(LocalCluster(n_workers=2))
    summary = pairrm.dask.rank_jsonl(client, "data/*.jsonl", "out/", model="/models/PairRM-hf")

The input (paths or globs, anything ``dask.bag.read_text`` accepts) is split into partitions of about
``blocksize`` bytes at line boundaries; each partition is scored on a worker by the CLI's own JSONL code (so
``out/part-00000.jsonl``, ``part-00001.jsonl``, ... concatenated equal ``pairrm rank --input`` byte for byte)
and written atomically. The model is loaded once per worker process and kept. A re-run skips partitions whose
output exists, so a killed job resumes without duplicating lines. ``manifest.json`` lists the partitions.
Error records (bad lines) carry their line number within the partition.
"""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Any, Dict, Optional, Sequence, Union

from .model import Model

_MODELS: Dict[tuple, Model] = {}
_LOADS = 0  # models loaded by this process (read with client.run(pairrm.dask.load_count))


def load_count() -> int:
    return _LOADS


def _model(path: str, precision: str, threads: int) -> Model:
    global _LOADS
    key = (path, precision, threads)
    if key not in _MODELS:
        _LOADS += 1
        _MODELS[key] = Model(path, precision=precision, threads=threads)
    return _MODELS[key]


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except Exception:  # run outside a worker (tests, local use)
        return f"{socket.gethostname()}:{os.getpid()}"


def _score_partition(lines: Sequence[str], index: int, output_dir: str, command: str, model: str, precision: str,
                     threads: int, options: Dict[str, Any]) -> Dict[str, Any]:
    final = os.path.join(output_dir, f"part-{index:05d}.jsonl")
    if os.path.exists(final):  # done by an earlier run (files appear only complete)
        return {"index": index, "rows": _count_lines(final), "errors": None, "seconds": 0.0, "worker": None,
                "skipped": True}
    engine = _model(model, precision, threads)
    tag = f"{socket.gethostname()}.{os.getpid()}"
    tmp_in, tmp_out = f"{final}.in.{tag}", f"{final}.tmp.{tag}"
    with open(tmp_in, "w", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line if line.endswith("\n") else line + "\n")
    start = time.perf_counter()
    try:
        stats = engine._engine.run_jsonl(command, tmp_in, tmp_out, options)
        os.replace(tmp_out, final)  # atomic: a partition's file is complete or absent
    finally:
        for p in (tmp_in, tmp_out):
            if os.path.exists(p):
                os.remove(p)
    return {"index": index, "rows": stats["ok"] + stats["failed"], "errors": stats["failed"],
            "seconds": time.perf_counter() - start, "worker": _worker_name(), "skipped": False}


def run_jsonl(client, command: str, inputs: Union[str, Sequence[str]], output_dir: str, model: Optional[str] = None,
              precision: str = "fp32", blocksize: Union[str, int, None] = "16MiB", threads: int = 1,
              **options: Any) -> Dict[str, Any]:
    """Runs ``pairrm <command>`` (compare, rank, best-of-n, worst-of-n, compare-conversations, dpo) over the
    inputs on the cluster. ``options``: mode, with_ref, method, seed, return_all, max_candidates (as the CLI).
    ``threads``: threads per partition (give each worker process as many threads as it has cores).
    Returns {"rows", "errors", "partitions", "skipped", "seconds", "rows_per_s_by_worker"}."""
    import dask
    import dask.bag

    model = model or os.environ.get("PAIRRM_MODEL")
    if not model:
        raise ValueError("pass model=... (a directory every worker can read, or a repo id) or set PAIRRM_MODEL")
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    bag = dask.bag.read_text(inputs, blocksize=blocksize)
    parts = bag.to_delayed()
    score = dask.delayed(_score_partition, pure=False)
    tasks = [score(p, i, os.path.abspath(output_dir), command, model, precision, threads, dict(options))
             for i, p in enumerate(parts)]
    results = client.gather(client.compute(tasks))
    seconds = time.perf_counter() - start
    by_worker: Dict[str, Dict[str, float]] = {}
    for r in results:
        if not r["skipped"]:
            w = by_worker.setdefault(r["worker"], {"rows": 0, "seconds": 0.0})
            w["rows"] += r["rows"]
            w["seconds"] += r["seconds"]
    manifest = {"command": command, "inputs": inputs if isinstance(inputs, str) else list(inputs), "model": model,
                "precision": precision, "options": options,
                "partitions": [{"file": f"part-{r['index']:05d}.jsonl", "rows": r["rows"]} for r in results]}
    tmp = os.path.join(output_dir, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(output_dir, "manifest.json"))
    return {
        "rows": sum(r["rows"] for r in results),
        "errors": sum(r["errors"] or 0 for r in results),
        "partitions": len(results),
        "skipped": sum(1 for r in results if r["skipped"]),
        "seconds": seconds,
        "rows_per_s_by_worker": {w: v["rows"] / v["seconds"] if v["seconds"] > 0 else 0.0 for w, v in by_worker.items()},
    }


def rank_jsonl(client, inputs, output_dir, model=None, precision="fp32", blocksize="16MiB", **options):
    """``pairrm rank`` on the cluster (``with_ref=...`` as ``--with-ref``)."""
    return run_jsonl(client, "rank", inputs, output_dir, model, precision, blocksize, **options)


def compare_jsonl(client, inputs, output_dir, model=None, precision="fp32", blocksize="16MiB", **options):
    """``pairrm compare`` on the cluster (``mode=...``)."""
    return run_jsonl(client, "compare", inputs, output_dir, model, precision, blocksize, **options)


def dpo_jsonl(client, inputs, output_dir, model=None, precision="fp32", blocksize="16MiB", **options):
    """``pairrm dpo`` on the cluster: chosen/rejected pairs for preference training."""
    return run_jsonl(client, "dpo", inputs, output_dir, model, precision, blocksize, **options)
