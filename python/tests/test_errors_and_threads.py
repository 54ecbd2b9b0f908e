"""Bad input is a Python exception with a message that names the problem, never a crash; one model is
safe to use from several Python threads and releases the GIL while it computes."""
import os
import shutil
import sys
import threading
import time

import numpy as np
import pytest

import pairrm
from conftest import model_dir


def test_bad_paths_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        pairrm.Model(tmp_path / "missing")
    with pytest.raises(pairrm.Error, match="config.json"):
        pairrm.Model(tmp_path)  # a directory without a model
    # A repo id that is not cached, offline: a clear error, no network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_CACHE"] = str(tmp_path / "hub")
    try:
        with pytest.raises(pairrm.Error, match="HF_HUB_OFFLINE"):
            pairrm.Blender().loadranker("llm-blender/PairRM-hf")
    finally:
        del os.environ["HF_HUB_OFFLINE"], os.environ["HF_HUB_CACHE"]
    broken = tmp_path / "broken"
    shutil.copytree(model_dir("tiny"), broken, ignore=shutil.ignore_patterns("debug.safetensors", "expected.json"))
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(pairrm.Error, match="model.safetensors"):
        pairrm.Blender().loadranker(str(broken))
    with pytest.raises(ValueError, match="precision"):
        pairrm.Model(model_dir("tiny"), precision="fp8")
    with pytest.raises(ValueError, match="attention"):
        pairrm.Model(model_dir("tiny"), precision="bf16", attention="fp16")
    # llm-blender sets any keyword on its RankerConfig: accepted, with a warning when it is not a field.
    with pytest.warns(UserWarning, match="not_an_option"):
        pairrm.Blender().loadranker(model_dir("tiny"), not_an_option=1)
    with pytest.warns(UserWarning, match="device='tpu' is ignored"):  # any device: a warning, never an error
        pairrm.Blender().loadranker(model_dir("tiny"), device="tpu")
    with pytest.raises(TypeError, match="device"):
        pairrm.Blender().loadranker(model_dir("tiny"), device=[0])
    with pytest.raises(pairrm.Error, match="between 3 and 8192"):
        pairrm.Blender().loadranker(model_dir("tiny"), source_maxlength=2)
    with pytest.raises(RuntimeError, match="loadranker"):
        pairrm.Blender().rank(["a"], [["b", "c"]])
    # PairRMJudge() loads llm-blender/PairRM as trl does: offline and not cached, a clear error.
    os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"), TRANSFORMERS_CACHE=str(tmp_path / "tc"))
    os.environ.pop("PAIRRM_MODEL", None)
    try:
        with pytest.raises(pairrm.Error, match="llm-blender/PairRM: HF_HUB_OFFLINE is set"):
            pairrm.PairRMJudge()
    finally:
        for k in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "TRANSFORMERS_CACHE"):
            del os.environ[k]


def test_wrong_lengths_and_types(tiny):
    with pytest.raises(ValueError, match="same length"):
        tiny.compare(["a", "b"], ["x"], ["y"])
    with pytest.raises(ValueError, match="same length"):
        tiny.rank(["a", "b"], [["x", "y"]])
    with pytest.raises(ValueError, match="same length"):
        tiny.rank(["a"], [["x", "y"]], instructions=["i", "j"])
    with pytest.raises(AssertionError, match="ref_candidates must be the same as inputs"):  # llm-blender asserts
        tiny.rank_with_ref(["a"], [["x", "y"]], ref_candidates=["r", "s"])
    with pytest.raises(AssertionError, match="must be a string"):
        tiny.rank_with_ref(["a"], [["x", "y"]], ref_candidates=[3])
    with pytest.raises(AssertionError, match="same length"):
        tiny.compare(["a", "b"], ["x"], ["y"])
    with pytest.raises(ValueError, match=r"candidates\[0\] is empty"):
        tiny.rank(["a"], [[]])
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a str"):
        tiny.rank(["a", 3], [["x"], ["y"]])
    with pytest.raises(TypeError, match="list of str"):
        tiny.compare("abc", ["x"], ["y"])
    with pytest.warns(UserWarning, match=r"mode='\[A,A\]' is not one of"):  # llm-blender runs its default
        assert tiny.compare(["a"], ["x"], ["y"], mode="[A,A]", return_logits=True) == \
            tiny.compare(["a"], ["x"], ["y"], return_logits=True)
    with pytest.raises(ValueError, match="Unknown ref_mode: loudest"):
        tiny.rank_with_ref(["a"], [["x", "y"]], ref_mode="loudest")
    with pytest.raises(TypeError, match="unexpected keyword argument 'top_k'"):  # as compare() in llm-blender
        tiny.rank_with_ref(["a"], [["x", "y"]], top_k=1)
    with pytest.raises(ValueError, match="pairrm_cmp_type"):
        tiny.get_best_of_n(["a"], [["x", "y"]], pairrm_cmp_type="quick")
    with pytest.raises(ValueError, match="batch_size"):
        tiny.rank(["a"], [["x", "y"]], batch_size=0)
    with pytest.raises(pairrm.Error, match="between 3 and 8192"):
        tiny.rank(["a"], [["x", "y"]], source_max_length=9000)
    with pytest.raises(TypeError, match="source_max_length must be an int"):
        tiny.rank(["a"], [["x", "y"]], source_max_length="10")
    for call in (tiny.fuse, tiny.rank_and_fuse):
        with pytest.raises(NotImplementedError, match="generative fuser"):
            call(["a"], [["x", "y"]])
    with pytest.raises(NotImplementedError, match="generative fuser"):
        tiny.loadfuser("llm-blender/gen_fuser_3b")
    with pytest.raises(ValueError, match="exactly 2 completions"):
        pairrm.PairRMJudge(model_dir("tiny")).judge(["p"], [["a", "b", "c"]])


def test_invalid_text(tiny):
    with pytest.raises(ValueError, match=r"candidates_A\[0\] is not valid Unicode"):
        tiny.compare(["a"], ["bad \ud800 surrogate"], ["y"])
    with pytest.raises(TypeError, match="str"):
        tiny.ranker.tokenize(b"bytes")
    # Python str cannot hold invalid UTF-8; bytes that reach the engine are checked there too.
    with pytest.raises(pairrm.Error, match="UTF-8"):
        tiny.ranker._engine.tokenize(b"\xff\xfe")
    # Empty strings are valid texts (a row of prefix tokens only), not errors.
    assert tiny.compare([""], [""], [""]).shape == (1,)
    # An oversized text is refused with the limit in the message; the model keeps working afterwards.
    with pytest.raises(pairrm.Error, match="bytes"):
        tiny.compare(["x" * (9 << 20)], ["a"], ["b"])
    assert tiny.compare(["a"], ["x"], ["y"]).shape == (1,)


def test_bad_conversations(tiny):
    good_a = [{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "hello"}]
    good_b = [{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "go away"}]
    assert tiny.compare_conversations([good_a], [good_b]).shape == (1,)
    bad_role = [{"role": "USER", "content": "hi"}, {"role": "SYSTEM", "content": "x"}]
    with pytest.raises(pairrm.Error, match="conversation pair 0"):
        tiny.compare_conversations([bad_role], [good_b])
    with pytest.raises(pairrm.Error, match="USER"):
        tiny.compare_conversations([good_a], [[{"role": "USER", "content": "other"}, good_b[1]]])
    with pytest.raises(pairrm.Error):
        tiny.compare_conversations([good_a[:1]], [good_b[:1]])  # odd number of turns
    with pytest.raises(ValueError, match=r"conversations_a\[0\]\[1\] must be a dict"):
        tiny.compare_conversations([[good_a[0], "hello"]], [good_b])
    with pytest.raises(ValueError, match="same length"):
        tiny.compare_conversations([good_a, good_a], [good_b])


def test_bad_rows(tiny):
    m = tiny.ranker
    row = m.build_row("a", "b", "c")
    with pytest.raises(pairrm.Error, match="row 0: missing 'cand2_pos'"):
        m.logits([{k: v for k, v in row.items() if k != "cand2_pos"}])
    with pytest.raises(pairrm.Error, match="outside the row"):
        m.logits([dict(row, cand2_pos=len(row["ids"]))])
    with pytest.raises(pairrm.Error, match="vocabulary"):
        m.logits([dict(row, ids=np.append(row["ids"], 10**6).astype(np.int32))])
    with pytest.raises(pairrm.Error, match="row 0"):
        m.logits(["not a row"])
    assert m.logits([row]).shape == (1,)


def test_threads_share_one_model(tiny):
    sources = [f"question {i}: what is {i} + {i}?" for i in range(12)]
    a = [f"{2 * i}" for i in range(12)]
    b = [f"maybe {i}" for i in range(12)]
    expected = tiny.compare(sources, a, b, return_logits=True)
    assert expected.shape == (12,)
    results, errors = [[] for _ in range(6)], []

    def work(k):
        try:
            for _ in range(3):
                results[k].append(tiny.compare(sources, a, b, return_logits=True))  # every result, kept
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [len(r) for r in results] == [3] * 6
    for per_thread in results:
        for r in per_thread:
            np.testing.assert_array_equal(r, expected)  # bitwise: every row is computed alone


def test_gil_is_released_during_compute():
    """Another Python thread runs while one thread is inside the native logits() call. Forced GIL hand-offs are
    switched off (a switch interval of 1000 s), so the GIL changes hands only where its holder releases it: the
    main thread's counter can then advance between the worker's two reads of it, taken just before and just after
    the call, only if the call released the GIL. No clock is read; the interval only has to exceed the whole test
    (a few seconds at most), by far."""
    m = pairrm.Model(model_dir("tiny"), threads=1)
    long_text = "word " * 3000
    rows = [m.build_row(long_text, long_text, long_text)] * 6
    counter, advanced = [0], []

    def worker():
        before = counter[0]
        m.logits(rows)
        advanced.append(counter[0] - before)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        # Released, the first try shows progress unless the OS never scheduled this thread during the call;
        # held, no try can. Up to 20 tries make the first case practically impossible.
        for _ in range(20):
            t = threading.Thread(target=worker)
            t.start()
            while t.is_alive():
                counter[0] += 1
                time.sleep(0)  # releases the GIL here, so the worker can take it back when its call returns
            t.join()
            if advanced[-1] > 0:
                break
    finally:
        sys.setswitchinterval(old)
    assert advanced and max(advanced) > 0, f"no Python ran during the native call in {len(advanced)} tries"
