"""pip install . -> the `pairrm` Python package: python/pairrm/*.py plus the _pairrm extension, built by the
project's CMake (the same C++ engine as the CLI) in build-python/.

It also installs the llm-blender layer (`import llm_blender` on pairrm) without touching the real llm-blender's
files: python/llm_blender goes to site-packages/pairrm/compat/llm_blender, and pairrm-llm-blender.pth puts
pairrm/compat on sys.path after site-packages, so a real llm-blender (installed before or after) is always found
first and `pip uninstall` of either leaves the other intact (docs/coming-from-llm-blender.md).

The build is portable (pairrm's kernels are compiled per ISA level and chosen by cpuid at run time), so a
wheel built here runs on any x86-64 CPU. Environment: PAIRRM_NATIVE=ON also compiles the rest for this
machine; CMAKE_BUILD_PARALLEL_LEVEL sets the compile jobs (default: all cores); PAIRRM_CMAKE_BUILD_DIR=DIR
builds the module in an existing Release tree (configured with PAIRRM_BUILD_PYTHON=ON) instead of build-python/.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
VERSION = re.search(r"project\(pairrm VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        target = pathlib.Path(self.get_ext_fullpath(ext.name)).resolve()
        # PAIRRM_CMAKE_BUILD_DIR: a Release tree already configured with the Python module (scripts/test.sh
        # passes build/, which it has just built): the module target is brought up to date there instead of
        # compiling the engine a second time.
        reuse = os.environ.get("PAIRRM_CMAKE_BUILD_DIR")
        if reuse:
            self.build_in(pathlib.Path(reuse).resolve(), target)
            return
        build_dir = ROOT / "build-python"
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DPAIRRM_BUILD_TESTS=OFF", "-DPAIRRM_BUILD_BENCH=OFF", "-DPAIRRM_BUILD_PYTHON=ON",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DPAIRRM_NATIVE={os.environ.get('PAIRRM_NATIVE', 'OFF')}",
        ]
        subprocess.check_call(configure)
        self.build_in(build_dir, target)

    @staticmethod
    def build_in(build_dir: pathlib.Path, target: pathlib.Path) -> None:
        cache = build_dir / "CMakeCache.txt"
        if not cache.is_file() or "PAIRRM_BUILD_PYTHON:BOOL=ON" not in cache.read_text():
            raise RuntimeError(f"{build_dir} is not a CMake build of pairrm with PAIRRM_BUILD_PYTHON=ON")
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "_pairrm", "-j", jobs])
        built = sorted((build_dir / "python" / "pairrm").glob("_pairrm*.so"))
        if not built:
            raise RuntimeError(f"the CMake build did not produce _pairrm*.so in {build_dir}/python/pairrm")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


PTH = "pairrm-llm-blender.pth"
# The llm-blender layer's packages, under pairrm/compat (not top level: see the docstring).
COMPAT = ["pairrm.compat." + p for p in find_packages(where=str(ROOT / "python"), include=["llm_blender", "llm_blender.*"])]


class BuildPy(build_py):
    """Also puts the .pth at the root of the build (site-packages once installed)."""

    def run(self) -> None:
        super().run()
        self.copy_file(str(ROOT / "python" / PTH), os.path.join(self.build_lib, PTH))

    def get_outputs(self, include_bytecode: bool = True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


setup(
    name="pairrm",
    version=VERSION,
    description="PairRM (llm-blender's pairwise reward model) on a native CPU engine: Blender and PairRMJudge "
                "drop-ins without PyTorch",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    install_requires=["numpy"],
    packages=["pairrm"] + COMPAT,
    package_dir={"": "python", "pairrm.compat.llm_blender": "python/llm_blender"},
    ext_modules=[CMakeExtension("pairrm._pairrm")],
    cmdclass={"build_ext": CMakeBuild, "build_py": BuildPy},
    zip_safe=False,
    # setuptools' own scratch goes beside the CMake tree, not into the developer build/ directory.
    options={"build": {"build_base": str(ROOT / "build-python" / "setuptools")}, "egg_info": {"egg_base": str(ROOT / "build-python")}},
)
