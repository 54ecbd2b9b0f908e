"""The llm_blender layer never shadows a real llm-blender: it lives in pairrm/compat (put on sys.path after
site-packages by pairrm-llm-blender.pth) and hands the import over to any other llm_blender on sys.path."""
import pathlib
import textwrap

from conftest import PACKAGE_ROOT, run_snippet

REAL_INIT = "REAL = True\nfrom llm_blender.blender.blender_utils import get_topk_candidates_from_ranks\n"
REAL_UTILS = "def get_topk_candidates_from_ranks(*a, **k):\n    return 'real'\n"


def fake_real_llm_blender(root: pathlib.Path) -> pathlib.Path:
    """A stand-in for the real package (its own blender_utils), in a directory of its own."""
    pkg = root / "llm_blender"
    (pkg / "blender").mkdir(parents=True)
    (pkg / "__init__.py").write_text(REAL_INIT)
    (pkg / "blender" / "__init__.py").write_text("")
    (pkg / "blender" / "blender_utils.py").write_text(REAL_UTILS)
    return root


PROBE = """
import llm_blender, pairrm
from llm_blender.blender.blender_utils import get_topk_candidates_from_ranks as topk
b = pairrm.Blender(); b.loadranker({model!r})
report(real=getattr(llm_blender, "REAL", False), file=llm_blender.__file__, topk=isinstance(topk([[1]], [["x"]], 1), str),
       pairrm_works=b.compare(["hello!"], ["hi!"], ["f**k off!"]).tolist(), path=sys.path)
"""


def probe(tmp_path, before: str = "", extra_env: dict = None):
    from conftest import model_dir
    return run_snippet(textwrap.dedent(before) + PROBE.format(model=model_dir("tiny")), torch=False,
                       hub=tmp_path / "hub", extra_env=extra_env)


def test_without_a_real_llm_blender_the_layer_is_imported(tmp_path):
    got = probe(tmp_path)
    assert got["real"] is False and got["topk"] is False
    assert pathlib.Path(got["file"]).resolve() == (PACKAGE_ROOT / "pairrm" / "compat" / "llm_blender" /
                                                  "__init__.py").resolve()
    compat = str(PACKAGE_ROOT / "pairrm" / "compat")
    assert compat in got["path"] and got["path"].index(compat) > got["path"].index(str(PACKAGE_ROOT))
    assert got["pairrm_works"] == [False]


def test_a_real_llm_blender_earlier_on_the_path_wins(tmp_path):
    real = fake_real_llm_blender(tmp_path / "real")
    got = probe(tmp_path, extra_env={"PYTHONPATH": f"{real}:{PACKAGE_ROOT}"})
    assert got["real"] is True and got["topk"] is True and got["file"].startswith(str(real))
    assert got["pairrm_works"] == [False]  # pairrm itself is unaffected


def test_a_real_llm_blender_later_on_the_path_still_wins(tmp_path):
    """E.g. pairrm in the user site and llm-blender in the system site-packages: the layer is reached first and
    hands the import over."""
    real = fake_real_llm_blender(tmp_path / "real")
    got = probe(tmp_path, before=f"sys.path.append({str(real)!r})\n")
    assert got["real"] is True and got["topk"] is True and got["file"].startswith(str(real))


def test_two_copies_of_the_layer_do_not_hand_over_to_each_other(tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(PACKAGE_ROOT / "pairrm" / "compat", copy)
    got = probe(tmp_path, before=f"sys.path.append({str(copy)!r})\n")
    assert got["real"] is False and got["pairrm_works"] == [False]
