"""Build norbert's compiled core (src/_core -> norbert._core) with OpenMP when available.

Metadata lives in pyproject.toml; this file only knows how to compile.
Environment variables:

NORBERT_FAIL_NO_OPENMP=1  make a compiler without OpenMP a build error (wheel CI).
NORBERT_DEBUG_CYTHON=1    compile with bounds/wraparound/initialised checks on.
"""

import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()
DEBUG = os.environ.get("NORBERT_DEBUG_CYTHON", "") not in ("", "0")
FAIL_NO_OPENMP = os.environ.get("NORBERT_FAIL_NO_OPENMP", "") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "cdivision": True,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "embedsignature": True,
    "cpow": True,
}

MODULES = ("_common", "_linalg", "_stereo", "_stats", "_filter", "_mask", "_online")

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n);
        return n > 0 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """Return (compile_args, link_args) for OpenMP, or None if this compiler has none."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang: the user provides CPPFLAGS="-Xpreprocessor -fopenmp" and libomp.
        return [], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


class BuildExtWithOpenMP(build_ext):
    """build_ext that compiles, links and runs a tiny OpenMP program before using -fopenmp.

    Probing with the build's own compiler object (as scikit-learn's setuptools build did)
    catches compilers that accept the flag but cannot link the runtime.
    """

    def _probe(self, compile_args, link_args):
        tmp = tempfile.mkdtemp(prefix="norbert-omp-")
        try:
            src = Path(tmp) / "probe.c"
            src.write_text(OPENMP_PROBE)
            objs = self.compiler.compile([str(src)], output_dir=tmp, extra_postargs=compile_args)
            exe = str(Path(tmp) / "probe")
            self.compiler.link_executable(objs, exe, extra_postargs=link_args)
            import subprocess

            out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
            return out.returncode == 0 and out.stdout.strip().isdigit()
        except Exception:  # any compile/link/run failure means "no usable OpenMP"
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        flags = openmp_flags(self.compiler)
        ok = flags is not None and self._probe(*flags)
        if ok:
            for ext in self.extensions:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
        else:
            message = (
                "norbert: this compiler cannot build OpenMP programs; the kernels will run "
                "on one thread. Install an OpenMP runtime (libgomp / libomp) for parallel kernels."
            )
            if FAIL_NO_OPENMP:
                raise RuntimeError(message + " (NORBERT_FAIL_NO_OPENMP is set)")
            print("WARNING: " + message, file=sys.stderr)
        for ext in self.extensions:
            if self.compiler.compiler_type != "msvc":
                # no fused multiply-add contraction: it would change results between builds.
                # -fno-trapping-math (values unchanged: only floating-point exception flags
                # are not kept) lets the compiler turn the kernels' guarded divisions and
                # selects into vector blends, so the stereo solve vectorises.
                ext.extra_compile_args += ["-ffp-contract=off", "-fno-trapping-math"]
                ext.extra_compile_args += ["-O3"] if not DEBUG else ["-O1", "-g"]
        super().build_extensions()


def extensions():
    # Cython resolves `cimport norbert._core.x` by package path, so the .pxd files are staged
    # under the name they are installed with.
    stage = HERE / "build" / "cython-include"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(
        HERE / "src" / "_core",
        stage / "norbert" / "_core",
        ignore=shutil.ignore_patterns("*.pyx", "*.c", "*.so", "*.pyd", "__pycache__"),
    )
    (stage / "norbert" / "__init__.pxd").write_text("")
    # Cython tracks the headers its .pxd files name, not the ones those include
    headers = sorted(str(h.relative_to(HERE)) for h in (HERE / "src" / "_core").glob("*.h"))
    exts = [
        Extension(f"norbert._core.{name}", [f"src/_core/{name}.pyx"], depends=headers)
        for name in MODULES
    ]
    return cythonize(
        exts,
        include_path=[str(stage)],
        compiler_directives=DIRECTIVES,
        force=DEBUG,
    )


setup(
    packages=["norbert", "norbert.dask", "norbert.compat", "norbert._core"],
    package_dir={"norbert": "src/norbert", "norbert._core": "src/_core"},
    package_data={
        "norbert": ["py.typed", "*.pyi"],
        "norbert.dask": ["*.pyi"],
        "norbert.compat": ["*.pyi"],
        "norbert._core": ["*.pxd", "*.pyi"],
    },
    exclude_package_data={"norbert._core": ["*.pyx", "*.c"]},
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
