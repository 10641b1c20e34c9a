"""The examples in the docstrings of the installed package, and in docs/*.rst, as doctests.

`python -m pytest` runs them with the rest of the suite (no --doctest-modules needed):
each docstring with examples is one test, named after the object it documents. Modules
of an optional extra whose dependencies are missing (``norbert.dask`` without dask) are
skipped, not failed; any other import error fails.

The package is imported from wherever it is installed, never from ``src/``: CI tests the
wheel it built.
"""

import doctest
import importlib
import io
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import norbert

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
DOCS = Path(__file__).resolve().parent.parent / "docs"


def _missing_dependency(exc):
    """The name of the third-party module whose absence caused exc, or None."""
    while exc is not None:
        name = getattr(exc, "name", None)
        if isinstance(exc, ImportError) and name and name.split(".")[0] != "norbert":
            return name
        exc = exc.__cause__ or exc.__context__
    return None


def _modules():
    names = ["norbert"] + sorted(
        info.name for info in pkgutil.walk_packages(norbert.__path__, "norbert.")
    )
    for name in names:
        try:
            yield name, importlib.import_module(name), None
        except ImportError as exc:
            missing = _missing_dependency(exc)
            if missing is None:
                raise
            yield name, None, f"{name} needs {missing}, which is not installed"


def _module_cases():
    finder = doctest.DocTestFinder(exclude_empty=True)
    seen = set()
    for name, module, skip in _modules():
        if skip:
            yield pytest.param(None, id=name, marks=pytest.mark.skip(reason=skip))
            continue
        for test in finder.find(module, name):
            if test.examples and test.name not in seen:  # re-exports appear twice
                seen.add(test.name)
                yield pytest.param(test, id=test.name)


def _docs_cases():
    if not DOCS.is_dir():  # an sdist or wheel without docs/
        return
    parser = doctest.DocTestParser()
    for path in sorted(DOCS.rglob("*.rst")):
        if "_build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        name = f"docs/{path.relative_to(DOCS).as_posix()}"
        test = parser.get_doctest(text, {}, name, str(path), 0)
        if test.examples:
            yield pytest.param(test, id=name)


def _editable_install():
    """True when norbert runs from src/ (pip install -e): its .pxd files are not under
    norbert/_core there, so get_include()'s promise only holds for a regular install."""
    return not (Path(norbert.__file__).resolve().parent / "_core").is_dir()


def _run(test):
    test.globs = dict(test.globs)  # every test starts from its module's namespace
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    with np.printoptions(legacy=False):
        result = runner.run(test, out=report.write, clear_globs=True)
    assert result.failed == 0, f"{test.name} ({test.filename}):\n{report.getvalue()}"


@pytest.mark.parametrize("test", list(_module_cases()))
def test_docstring_examples(test):
    if test.name == "norbert.get_include" and _editable_install():
        pytest.skip("editable install: the .pxd files are not laid out as norbert/_core")
    _run(test)


@pytest.mark.parametrize("test", list(_docs_cases()))
def test_documentation_examples(test):
    pytest.importorskip("scipy.signal", reason="docs examples use scipy.signal")
    if "ShortTimeFFT" in "".join(e.source for e in test.examples):
        import scipy.signal

        if not hasattr(scipy.signal, "ShortTimeFFT"):
            pytest.skip("scipy.signal.ShortTimeFFT needs scipy >= 1.12")
    _run(test)
