"""What the package ships: compiled modules, .pxd, .pyi, py.typed, and nothing else.

The installed package is inspected as it is (CI installs it the non-editable way; an
editable install has nothing to inspect and skips). With NORBERT_TEST_WHEEL=1 a wheel
(and, when `build` is installed, an sdist) is also built from a copy of the source tree
and its file list checked; that takes about a minute, so it is opt-in.
"""

import importlib.machinery
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import norbert

MODULES = ("_common", "_linalg", "_stereo", "_stats", "_filter", "_mask")  # norbert._core.*
PXD = ("__init__",) + MODULES
STUBS = (
    "norbert/__init__.pyi",
    "norbert/contrib.pyi",
    "norbert/dask/__init__.pyi",
    "norbert/_core/__init__.pyi",
) + tuple(f"norbert/_core/{m}.pyi" for m in MODULES)
# generated or intermediate files that must never be shipped in a wheel
NEVER = re.compile(r"\.(pyx|c|cpp|o|obj|html|pyd\.manifest)$|(^|/)(build|tests?|benchmarks)/")
ROOT = Path(__file__).resolve().parents[1]

PACKAGE = Path(norbert.__file__).resolve().parent
CORE = PACKAGE / "_core"

installed = pytest.mark.skipif(
    not (CORE / "__init__.py").is_file(),
    reason="editable install: src/_core is not inside the norbert package; "
    "install the package (pip install .) to inspect it",
)


def _extension_files(directory, name):
    return [
        directory / (name + suffix)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (directory / (name + suffix)).is_file()
    ]


@installed
@pytest.mark.parametrize("module", MODULES)
def test_compiled_module_installed_without_its_sources(module):
    assert _extension_files(CORE, module), f"no compiled norbert._core.{module} in {CORE}"
    for suffix in (".pyx", ".c", ".cpp", ".html"):
        assert not (CORE / (module + suffix)).exists(), f"{module}{suffix} is shipped"


@installed
def test_pxd_pyi_and_py_typed_installed():
    missing = [f"norbert/_core/{m}.pxd" for m in PXD if not (CORE / f"{m}.pxd").is_file()]
    missing += [s for s in STUBS if not (PACKAGE.parent / s).is_file()]
    if not (PACKAGE / "py.typed").is_file():
        missing.append("norbert/py.typed")
    assert not missing, f"not installed: {missing}"


@installed
def test_get_include_finds_the_installed_pxd():
    include = Path(norbert.get_include())
    assert include.is_dir()
    assert (include / "norbert" / "__init__.py").resolve() == Path(norbert.__file__).resolve()
    assert (include / "norbert" / "_core" / "__init__.pxd").is_file()


def _cimported_modules(text):
    names = re.findall(r"^\s*from\s+norbert\._core\.(\w+)\s+cimport", text, re.MULTILINE)
    names += re.findall(r"^\s*cimport\s+norbert\._core\.(\w+)", text, re.MULTILINE)
    return set(names)


@installed
def test_public_pxd_is_self_contained():
    # Everything __init__.pxd reaches must be shipped, and must not need a C header:
    # downstream builds get only get_include() on Cython's path, not on the C include path.
    seen, todo = set(), ["__init__"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        pxd = CORE / f"{name}.pxd"
        assert pxd.is_file(), (
            f"norbert/_core/{name}.pxd is cimported by the public API but not shipped"
        )
        text = pxd.read_text(encoding="utf-8")
        headers = re.findall(r'^\s*cdef\s+extern\s+from\s+"([^"*]+)"', text, re.MULTILINE)
        assert not headers, f"{name}.pxd needs C headers {headers}, which downstream cannot find"
        todo.extend(_cimported_modules(text) - seen)
    assert seen >= {"__init__", "_common", "_linalg", "_stats", "_filter"}


def _installed_files():
    """The RECORD of the distribution that provides the imported norbert, or None.

    Not simply importlib.metadata.files("norbert"): run from a source checkout, the
    norbert.egg-info that `pip install .` leaves there comes first on sys.path.
    """
    target = Path(norbert.__file__).resolve()
    for dist in importlib.metadata.distributions(name="norbert"):
        files = dist.files or []
        if any(Path(dist.locate_file(f)).resolve() == target for f in files):
            return files
    return None


@installed
def test_distribution_records_no_build_leftovers():
    files = _installed_files()
    if files is None:
        pytest.skip("no installed distribution's RECORD lists the imported norbert")
    names = [str(f).replace("\\", "/") for f in files]
    package_files = [n for n in names if n.startswith("norbert/")]
    leftovers = [n for n in package_files if NEVER.search(n)]
    assert not leftovers, f"shipped: {leftovers}"
    for expected in [f"norbert/_core/{m}.pxd" for m in PXD] + list(STUBS) + ["norbert/py.typed"]:
        assert expected in names, f"{expected} is not in the distribution's RECORD"


# -- building the wheel and the sdist (opt-in) --------------------------------------------

build_packages = pytest.mark.skipif(
    os.environ.get("NORBERT_TEST_WHEEL", "") in ("", "0"),
    reason="set NORBERT_TEST_WHEEL=1 to build a wheel and an sdist (about a minute)",
)


def _source_copy(tmp_path):
    if not (ROOT / "setup.py").is_file() or not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not running from a source checkout")
    ignore = shutil.ignore_patterns(
        ".git",
        "build",
        "dist",
        "wheelhouse",
        "*.egg-info",
        "__pycache__",
        ".*_cache",
        ".hypothesis",
        "*.so",
        "*.pyd",
        "*.c",
        "*.html",
        ".venv",
        "venv",
    )
    src = tmp_path / "src-copy"
    shutil.copytree(ROOT, src, ignore=ignore)
    return src


def _run(args, cwd):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=1200)
    assert proc.returncode == 0, f"{args} failed\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"


@build_packages
def test_wheel_contents(tmp_path):
    src = _source_copy(tmp_path)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("norbert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in MODULES:
        compiled = [n for n in names if re.fullmatch(rf"norbert/_core/{module}\.[^/]*(so|pyd)", n)]
        assert len(compiled) == 1, f"{module}: {compiled}"
    for expected in [f"norbert/_core/{m}.pxd" for m in PXD] + list(STUBS) + ["norbert/py.typed"]:
        assert expected in names, f"{expected} missing from {wheel.name}"
    leftovers = [n for n in names if NEVER.search(n)]
    assert not leftovers, f"{wheel.name} ships {leftovers}"
    top = {n.split("/")[0] for n in names}
    assert top <= {
        "norbert",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }, top


@build_packages
def test_sdist_contents(tmp_path):
    # asked in a subprocess: a build/ directory in the current one would pass for `build`
    probe = subprocess.run(
        [sys.executable, "-c", "import build.__main__"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("the `build` package is not installed")
    src = _source_copy(tmp_path)
    _run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "dist"), str(src)],
        cwd=tmp_path,
    )
    (sdist,) = (tmp_path / "dist").glob("norbert-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = ["/".join(n.split("/")[1:]) for n in tar.getnames()]
    for expected in [
        "setup.py",
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "src/norbert/py.typed",
        "src/norbert/__init__.pyi",
    ]:
        assert expected in names, f"{expected} missing from {sdist.name}"
    for module in MODULES:
        assert f"src/_core/{module}.pyx" in names and f"src/_core/{module}.pxd" in names
    # every header a .pyx includes, directly or through a .pxd or another header, must be
    # there for the sdist to build
    core = ROOT / "src" / "_core"
    for source in [*core.glob("*.pxd"), *core.glob("*.pyx"), *core.glob("*.h")]:
        text = source.read_text()
        headers = re.findall(r'cdef\s+extern\s+from\s+"([^"*]+)"', text)
        headers += re.findall(r'^\s*#include\s+"([^"]+)"', text, re.MULTILINE)
        for header in headers:
            assert f"src/_core/{header}" in names, f"{header} missing from {sdist.name}"
    # a test suite in the sdist must be whole, or packagers cannot run it
    shipped_tests = [n for n in names if n.startswith("tests/") and n.endswith(".py")]
    if shipped_tests:
        for needed in [
            "tests/conftest.py",
            "tests/cython_consumer/consumer.pyx",
            "tests/cython_consumer/setup.py",
            "tests/typing_user.py",
        ]:
            assert needed in names, f"{sdist.name} ships tests/ without {needed}"
    generated = [n for n in names if re.search(r"\.(c|so|pyd|o|html)$", n)]
    assert not generated, f"{sdist.name} ships generated files {generated}"
