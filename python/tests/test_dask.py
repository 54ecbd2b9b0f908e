"""pairrm.dask on a LocalCluster of 2 worker processes (loopback): identical output to the single-process
JSONL code, the model loaded once per worker, a killed worker survived, a re-run doing no work."""
import json
import os
import signal
import threading
import time

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import pairrm
import pairrm.dask
from conftest import model_dir


def write_input(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": i, "source": f"question {i}: what is {i} plus {i}?",
                                "candidates": [f"{2 * i}", f"maybe {i}", "I don't know", f"{i}{i}"]}) + "\n")


def reference(tmp_path, inp):
    """The CLI's code path in this process: what `pairrm rank --input` writes."""
    out = str(tmp_path / "reference.jsonl")
    pairrm.Model(model_dir("tiny"), threads=1)._engine.run_jsonl("rank", str(inp), out, {})
    return open(out, "rb").read()


def merged(out_dir):
    parts = sorted(p for p in os.listdir(out_dir) if p.startswith("part-") and p.endswith(".jsonl"))
    return b"".join(open(os.path.join(out_dir, p), "rb").read() for p in parts)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       host="127.0.0.1")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_rank_on_two_workers_equals_one_process_and_loads_once(client, tmp_path):
    inp = tmp_path / "in.jsonl"
    write_input(inp, 300)
    out = tmp_path / "out"
    summary = pairrm.dask.rank_jsonl(client, str(inp), str(out), model=model_dir("tiny"), blocksize=4096)
    assert summary["rows"] == 300 and summary["errors"] == 0
    assert summary["partitions"] > 4 and summary["skipped"] == 0
    assert merged(out) == reference(tmp_path, inp)
    loads = client.run(pairrm.dask.load_count)
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()), loads  # once per worker, not per task
    manifest = json.load(open(out / "manifest.json"))
    assert sum(p["rows"] for p in manifest["partitions"]) == 300

    # A re-run finds every partition done and does no work (no model load either).
    again = pairrm.dask.rank_jsonl(client, str(inp), str(out), model=model_dir("tiny"), blocksize=4096)
    assert again["skipped"] == again["partitions"] and again["rows"] == 300
    assert client.run(pairrm.dask.load_count) == loads
    assert merged(out) == reference(tmp_path, inp)


def test_a_killed_worker_does_not_lose_or_duplicate_lines(client, tmp_path):
    inp = tmp_path / "in.jsonl"
    write_input(inp, 600)
    out = tmp_path / "out"
    os.makedirs(out)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    result = {}

    def job():
        result["summary"] = pairrm.dask.rank_jsonl(client, str(inp), str(out), model=model_dir("tiny"),
                                                   blocksize=2048)

    t = threading.Thread(target=job)
    t.start()
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.startswith("part-") for p in os.listdir(out)):
        time.sleep(0.01)
    os.kill(pids[victim], signal.SIGKILL)  # mid-job: the nanny restarts it, its tasks run again elsewhere
    t.join(timeout=300)
    assert not t.is_alive()
    assert result["summary"]["rows"] == 600
    assert merged(out) == reference(tmp_path, inp)  # every line exactly once, in order
    leftovers = [p for p in os.listdir(out) if ".tmp." in p or ".in." in p]
    assert len(leftovers) <= 2  # at most the killed worker's half-written scratch files
