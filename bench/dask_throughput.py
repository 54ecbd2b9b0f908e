#!/usr/bin/env python3
"""Throughput of `pairrm.dask` on a LocalCluster of 2 worker processes (1 thread each) against one process
(2 threads), on the same JSONL compare job.  Usage: bench/dask_throughput.py MODEL_DIR [LINES]
Run with the package importable (PYTHONPATH=build/python, or after pip install .)."""
import json
import os
import sys
import tempfile
import time

import distributed
import pairrm
import pairrm.dask

def main():
    model, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
    tmp = tempfile.mkdtemp()
    inp = os.path.join(tmp, "in.jsonl")
    with open(inp, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": i, "source": f"Question {i}: explain in one sentence why the sky looks blue.",
                                "candidate_a": f"Sunlight scatters off air molecules, blue light the most ({i}).",
                                "candidate_b": "Because the ocean reflects onto it."}) + "\n")

    start = time.perf_counter()
    pairrm.Model(model, threads=2)._engine.run_jsonl("compare", inp, os.path.join(tmp, "single.jsonl"), {})
    single = time.perf_counter() - start

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       host="127.0.0.1")
    client = distributed.Client(cluster)
    start = time.perf_counter()
    summary = pairrm.dask.compare_jsonl(client, inp, os.path.join(tmp, "dask"), model=model, blocksize=600, threads=1)
    clustered = time.perf_counter() - start
    client.close()
    cluster.close()
    print(json.dumps({"lines": n, "single_process_2_threads": {"seconds": round(single, 2), "lines_per_s": round(n / single, 3)},
                      "local_cluster_2x1": {"seconds": round(clustered, 2), "lines_per_s": round(n / clustered, 3),
                                            "partitions": summary["partitions"],
                                            "rows_per_s_by_worker": summary["rows_per_s_by_worker"]},
                      "identical_output_note": "single process at 2 threads vs workers at 1: results are deterministic per thread count, so they differ in the last bits"}, indent=1))


if __name__ == "__main__":  # the cluster spawns worker processes that import this file
    main()
