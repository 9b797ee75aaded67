"""Builds pythia._core by driving CMake (see CMakeLists.txt); torch is not a build dependency.

Environment knobs: PYTHIA_BUILD_DIR (default build/cmake), PYTHIA_BUILD_TESTS (ON/OFF/AUTO,
default AUTO: also builds the GoogleTest suite there for `ctest`), PYTHIA_WITH_CUDA (ON/OFF/AUTO).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = Path(os.environ.get("PYTHIA_BUILD_DIR", ROOT / "build" / "cmake"))
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DPYTHIA_BUILD_TESTS={os.environ.get('PYTHIA_BUILD_TESTS', 'AUTO')}",
            f"-DPYTHIA_WITH_CUDA={os.environ.get('PYTHIA_WITH_CUDA', 'AUTO')}",
        ]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 2)], check=True)
        # The module is built inside build_dir (so `cmake --build` alone works for C++ work);
        # setuptools wants it at `target`, a temporary directory for editable installs.
        built = build_dir / Path(target).name
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename: a running server keeps its mapping of the old file instead of
        # executing a file rewritten under it.
        staging = target.with_name(target.name + ".tmp")
        shutil.copy2(built, staging)
        os.replace(staging, target)
        # The CUDA kernels' module, built only where nvcc was found, goes into the package
        # directory itself (the project is installed editable, as `make build` does).
        for kernels in build_dir.glob("_kv_cuda*.so"):
            staging = ROOT / "pythia" / (kernels.name + ".tmp")
            shutil.copy2(kernels, staging)
            os.replace(staging, ROOT / "pythia" / kernels.name)


setup(ext_modules=[CMakeExtension("pythia._core")], cmdclass={"build_ext": CMakeBuild})
