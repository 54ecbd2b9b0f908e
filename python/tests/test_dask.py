"""pairrm.dask on a LocalCluster of 2 worker processes (loopback): identical output to the single-process
JSONL code and the same values as the Python API (rank, compare, dpo, any command through run_jsonl), the model
loaded once per worker, a killed worker survived, a re-run doing no work."""
import json
import os
import signal
import threading
import time
import types

import numpy as np
import pytest

from conftest import model_dir, require_module

dask = require_module("dask", "CI installs python3-dask with scripts/setup.sh --dev")
distributed = require_module("distributed", "CI installs python3-distributed with scripts/setup.sh --dev")

import pairrm
import pairrm.dask


def write_input(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": i, "source": f"question {i}: what is {i} plus {i}?",
                                "candidates": [f"{2 * i}", f"maybe {i}", "I don't know", f"{i}{i}"]}) + "\n")


def write_lines(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def reference(tmp_path, inp, command="rank", **options):
    """The CLI's code path in this process: what `pairrm <command> --input` writes."""
    out = str(tmp_path / f"reference-{command}.jsonl")
    pairrm.Model(model_dir("tiny"), threads=1)._engine.run_jsonl(command, str(inp), out, options)
    return open(out, "rb").read()


def part_files(out_dir):
    return sorted(p for p in os.listdir(out_dir) if p.startswith("part-") and p.endswith(".jsonl"))


def merged(out_dir):
    return b"".join(open(os.path.join(out_dir, p), "rb").read() for p in part_files(out_dir))


def records(out_dir):
    return [json.loads(line) for line in merged(out_dir).decode().splitlines()]


def check_counts(summary, out_dir, n, errors=0):
    """Every input line is one output line, over several partitions, as the summary and manifest say."""
    assert summary["rows"] == n and summary["errors"] == errors and summary["skipped"] == 0
    assert summary["partitions"] == len(part_files(out_dir)) > 1
    assert len(merged(out_dir).splitlines()) == n
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    assert [p["file"] for p in manifest["partitions"]] == part_files(out_dir)
    assert sum(p["rows"] for p in manifest["partitions"]) == n


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
    check_counts(summary, out, 300)
    assert summary["partitions"] > 4
    assert merged(out) == reference(tmp_path, inp)
    loads = client.run(pairrm.dask.load_count)
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()), loads  # once per worker, not per task

    # A re-run finds every partition done and does no work (no model load either).
    again = pairrm.dask.rank_jsonl(client, str(inp), str(out), model=model_dir("tiny"), blocksize=4096)
    assert again["skipped"] == again["partitions"] == summary["partitions"] and again["rows"] == 300
    assert client.run(pairrm.dask.load_count) == loads
    assert merged(out) == reference(tmp_path, inp)


def compare_input(n):
    return [{"id": i, "source": f"question {i}: what is {i} plus {i}?", "candidate_a": f"{2 * i}",
             "candidate_b": f"maybe {i}" if i % 3 else "I don't know"} for i in range(n)]


@pytest.mark.parametrize("mode,api_mode,keys", [
    (None, "[A,B]+[B,A]", ("logit_ab", "logit_ba", "score", "a_better")),  # the default: both passes
    ("[B,A]", "[B,A]", ("logit_ba", "score", "a_better")),
], ids=["default-mode", "BA"])
def test_compare_jsonl_equals_the_python_api(client, tiny, tmp_path, mode, api_mode, keys):
    rows = compare_input(150)
    inp = write_lines(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    options = {} if mode is None else {"mode": mode}
    summary = pairrm.dask.compare_jsonl(client, str(inp), str(out), model=model_dir("tiny"), blocksize=2048,
                                        **options)
    check_counts(summary, out, len(rows))
    assert merged(out) == reference(tmp_path, inp, "compare", **options)
    got = records(out)
    want = tiny.ranker.compare([r["source"] for r in rows], [r["candidate_a"] for r in rows],
                               [r["candidate_b"] for r in rows], mode=api_mode)
    better = tiny.compare([r["source"] for r in rows], [r["candidate_a"] for r in rows],
                          [r["candidate_b"] for r in rows], mode=api_mode)
    assert len(got) == len(rows) == len(want["score"])
    for k, (g, r) in enumerate(zip(got, rows, strict=True)):
        assert g["id"] == r["id"] and tuple(g) == ("id",) + keys
        # JSON carries the shortest round-trip form of each double: the API's float64 values, bitwise.
        assert g["score"] == want["score"][k]
        for key in ("logit_ab", "logit_ba"):
            assert g[key] == want[key][k] if key in keys else np.isnan(want[key][k])
        assert g["a_better"] == bool(better[k]) == (g["score"] > 0)


def test_dpo_jsonl_equals_ranking_each_prompt(client, tiny, tmp_path):
    rows = [{"id": i, "prompt": f"question {i}: what is {i} plus {i}?",
             "responses": ["same", "same"] if i % 10 == 7 else [f"{2 * i}", f"maybe {i}", "I don't know"][:2 + i % 2]}
            for i in range(120)]
    inp = write_lines(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    summary = pairrm.dask.dpo_jsonl(client, str(inp), str(out), model=model_dir("tiny"), blocksize=2048)
    check_counts(summary, out, len(rows))
    assert merged(out) == reference(tmp_path, inp, "dpo")
    got = records(out)
    assert len(got) == len(rows)
    pairs = 0
    for g, r in zip(got, rows, strict=True):
        assert g["id"] == r["id"] and g["prompt"] == r["prompt"]
        if len(set(r["responses"])) < 2:
            assert g == {"id": r["id"], "prompt": r["prompt"], "skipped": "fewer than 2 distinct responses"}
            continue
        scores = tiny.rank([r["prompt"]], [r["responses"]], return_scores=True)[0]
        assert len(set(scores.tolist())) == len(scores)  # no ties: the best and the worst are unambiguous
        best, worst = int(np.argmax(scores)), int(np.argmin(scores))
        assert (g["chosen"], g["rejected"]) == (r["responses"][best], r["responses"][worst])
        # rank()'s float32 scores are the engine's float64 scores rounded: equal once rounded the same way.
        assert (np.float32(g["chosen_score"]), np.float32(g["rejected_score"])) == (scores[best], scores[worst])
        pairs += 1
    assert pairs == 108  # 12 of the 120 prompts have one distinct response


def test_run_jsonl_any_command_with_options_and_error_lines(client, tiny, tmp_path):
    """best-of-n with method="full" and return_all through run_jsonl; two bad lines are error records, counted
    in the summary, with their line number within their partition."""
    rows = [{"id": i, "source": f"question {i}: what is {i} plus {i}?",
             "candidates": [f"{2 * i}", f"maybe {i}", "I don't know", f"{i}{i}"]} for i in range(100)]
    bad = {17: {"id": 17, "source": "no candidates"}, 64: {"id": 64, "source": "empty", "candidates": []}}
    lines = [bad.get(i, r) for i, r in enumerate(rows)]
    inp = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out"
    summary = pairrm.dask.run_jsonl(client, "best-of-n", str(inp), str(out), model=model_dir("tiny"),
                                    blocksize=2048, method="full", return_all=True)
    check_counts(summary, out, len(lines), errors=2)
    # The single-process output, but for the error records' line numbers (the file's there, the partition's here).
    one_process = [json.loads(line) for line in
                   reference(tmp_path, inp, "best-of-n", method="full", return_all=True).decode().splitlines()]
    without_lines = [{k: v for k, v in r.items() if k != "line"} for r in records(out)]
    assert without_lines == [{k: v for k, v in r.items() if k != "line"} for r in one_process]
    assert [r.get("line") for r in one_process if "error" in r] == [18, 65]
    good = [r for i, r in enumerate(rows) if i not in bad]
    best = tiny.get_best_of_n([r["source"] for r in good], [r["candidates"] for r in good], pairrm_cmp_type="full")
    scores = tiny.rank([r["source"] for r in good], [r["candidates"] for r in good], return_scores=True)
    ranks = tiny.rank([r["source"] for r in good], [r["candidates"] for r in good])
    want = iter(zip(good, best, scores, ranks, strict=True))
    errors = []
    for part in part_files(out):
        for line_number, text in enumerate(open(out / part).read().splitlines(), start=1):
            g = json.loads(text)
            if "error" in g:
                errors.append((g["id"], g["line"] == line_number, g["error"]))
                continue
            r, b, s, k = next(want)
            assert g["id"] == r["id"] and g["best"] == b == r["candidates"][g["best_index"]]
            assert g["ranks"] == k.tolist()
            np.testing.assert_array_equal(np.float32(g["scores"]), s)  # float32 of the same float64 scores
    assert next(want, None) is None  # every good line had its record
    assert errors == [(17, True, "missing field 'candidates'"), (64, True, "field 'candidates' is empty")]


# -- a worker killed while it holds a partition --------------------------------------------------------------


def hang_in_next_partition(marker):
    """Run on the victim worker: its next partition writes its scratch input and half a line of output, as a
    worker killed mid-write leaves them, names the input in `marker`, then never returns (the partition is in
    flight on this worker until it is killed)."""
    import pairrm.dask as module

    class Hanging:
        def run_jsonl(self, command, tmp_in, tmp_out, options):
            with open(tmp_out, "w") as f:
                f.write('{"id": 0, "sco')
            with open(marker + ".tmp", "w") as f:
                f.write(tmp_in)
            os.replace(marker + ".tmp", marker)
            threading.Event().wait()

    module._model = lambda *args: types.SimpleNamespace(_engine=Hanging())
    return os.getpid()


def pid_alive(pid):
    """A live process (not a zombie) with this pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_worker_does_not_lose_or_duplicate_lines(tmp_path):
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       host="127.0.0.1")
    client = distributed.Client(cluster)
    try:
        inp = tmp_path / "in.jsonl"
        write_input(inp, 600)
        out = tmp_path / "out"
        marker = str(tmp_path / "victim-started")
        pids = client.run(os.getpid)
        assert len(pids) == 2
        victim = sorted(pids)[0]
        assert client.run(hang_in_next_partition, marker, workers=[victim]) == {victim: pids[victim]}
        result = {}

        def job():
            result["summary"] = pairrm.dask.rank_jsonl(client, str(inp), str(out), model=model_dir("tiny"),
                                                       blocksize=2048)

        t = threading.Thread(target=job)
        t.start()
        # Hang guards only (no speed is measured): the victim takes a partition within seconds.
        deadline = time.time() + 120
        while not os.path.exists(marker) and time.time() < deadline:
            time.sleep(0.01)
        assert os.path.exists(marker), "the victim worker never started a partition"
        scratch_in = os.path.basename(open(marker).read())
        hung = scratch_in.split(".in.")[0]  # part-NNNNN.jsonl, which the victim holds and never finishes
        assert t.is_alive() and hung not in part_files(out)  # so the job cannot have finished
        os.kill(pids[victim], signal.SIGKILL)  # mid-job: the nanny restarts it, its partition runs elsewhere
        t.join(timeout=300)
        assert not t.is_alive()
        assert result["summary"]["rows"] == 600 and result["summary"]["skipped"] == 0
        assert result["summary"]["partitions"] == len(part_files(out)) > 4
        assert hung in part_files(out)  # rerun by another worker: the victim could never have written it
        assert merged(out) == reference(tmp_path, inp)  # every line exactly once, in order
        # The worker really died: its process is gone and a fresh one took its place.
        assert not pid_alive(pids[victim])
        client.wait_for_workers(2)
        after = client.run(os.getpid)
        assert len(after) == 2 and pids[victim] not in after.values()
        # Left behind: exactly the killed worker's scratch files (its input and half-written output), never a
        # part file, so the rerun wrote the partition whole.
        leftovers = sorted(p for p in os.listdir(out) if ".tmp." in p or ".in." in p)
        assert leftovers == sorted([scratch_in, scratch_in.replace(".in.", ".tmp.")])
    finally:
        client.close()
        cluster.close()
