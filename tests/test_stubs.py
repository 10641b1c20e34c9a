"""The .pyi stubs describe the objects that exist at run time.

Every `def` in a stub of norbert's public modules and of its compiled modules must have the
parameter names, kinds and defaults of ``inspect.signature`` of the runtime object; stub
classes, re-exports, enums and ``__all__`` must match too, and every public runtime name
must have a stub. Then ``mypy --strict`` (when installed) checks the stubs themselves and
tests/typing_user.py, a small user script, against them.
"""

import ast
import enum
import importlib
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import norbert

# modules that ship a stub; norbert.dask needs the [dask] extra
MODULES = [
    "norbert",
    "norbert.contrib",
    "norbert._core",
    "norbert._core._common",
    "norbert._core._linalg",
    "norbert._core._stereo",
    "norbert._core._stats",
    "norbert._core._filter",
    "norbert._core._mask",
    "norbert._core._online",
    "norbert.dask",
]
USER_SCRIPT = Path(__file__).parent / "typing_user.py"


def stub_path(module_name):
    """The .pyi beside a module's source or extension file (installed or editable)."""
    origin = Path(importlib.util.find_spec(module_name).origin)
    name = "__init__" if origin.stem == "__init__" else origin.name.split(".")[0]
    return origin.with_name(name + ".pyi")


def _stub_tree(module_name):
    path = stub_path(module_name)
    assert path.is_file(), f"{module_name} has no stub {path}"
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _literal(node):
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return inspect.Parameter.empty  # "has a default", value unstated
    return ast.literal_eval(node)


def _stub_parameters(func):
    """[(name, kind, default or empty-if-`...`, has_default)] of a stub FunctionDef."""
    a = func.args
    P = inspect.Parameter
    positional = [(arg, P.POSITIONAL_ONLY) for arg in a.posonlyargs]
    positional += [(arg, P.POSITIONAL_OR_KEYWORD) for arg in a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = [
        (arg.arg, kind, None if d is None else _literal(d), d is not None)
        for (arg, kind), d in zip(positional, defaults)
    ]
    if a.vararg:
        out.append((a.vararg.arg, P.VAR_POSITIONAL, None, False))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, P.KEYWORD_ONLY, None if d is None else _literal(d), d is not None))
    if a.kwarg:
        out.append((a.kwarg.arg, P.VAR_KEYWORD, None, False))
    return out


def _runtime_parameters(obj):
    out = []
    for p in inspect.signature(obj).parameters.values():
        has_default = p.default is not p.empty
        out.append((p.name, p.kind, p.default if has_default else None, has_default))
    return out


def _same_parameters(stub, runtime):
    if len(stub) != len(runtime):
        return False
    for (sn, sk, sd, shd), (rn, rk, rd, rhd) in zip(stub, runtime):
        if (sn, sk, shd) != (rn, rk, rhd):
            return False
        if shd and sd is not inspect.Parameter.empty and (type(sd) is not type(rd) or sd != rd):
            return False
    return True


def _stub_items(tree):
    """Top-level names a stub defines: {name: node}, skipping private type aliases."""
    items = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            items[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            items[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    items[target.id] = node
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("norbert"):
            for alias in node.names:
                if alias.asname == alias.name:  # an explicit re-export
                    items[alias.name] = node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name.startswith("norbert"):
                    items[alias.asname] = node
    return {k: v for k, v in items.items() if not (k.startswith("_") and not k.startswith("__"))}


@pytest.mark.parametrize("module_name", MODULES)
def test_stub_matches_runtime(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if module_name != "norbert.dask":
            raise
        pytest.skip(f"norbert.dask needs the [dask] extra: {exc}")
    items = _stub_items(_stub_tree(module_name))
    problems = []
    for name, node in items.items():
        if name == "__all__":
            stub_all = ast.literal_eval(node.value)
            if sorted(stub_all) != sorted(getattr(module, "__all__", [])):
                problems.append(f"__all__: stub {sorted(stub_all)}, runtime {module.__all__}")
            continue
        if not hasattr(module, name):
            problems.append(f"{name}: in the stub, not at run time")
            continue
        obj = getattr(module, name)
        if isinstance(node, ast.FunctionDef):
            stub, runtime = _stub_parameters(node), _runtime_parameters(obj)
            if not _same_parameters(stub, runtime):
                problems.append(f"{name}: stub {stub} != runtime {inspect.signature(obj)}")
        elif isinstance(node, ast.ClassDef):
            if not isinstance(obj, type):
                problems.append(f"{name}: a class in the stub, {type(obj)} at run time")
            elif issubclass(obj, enum.Enum):
                stub_members = {
                    s.targets[0].id: ast.literal_eval(s.value)
                    for s in node.body
                    if isinstance(s, ast.Assign)
                }
                runtime_members = {m.name: m.value for m in obj}
                if stub_members != runtime_members:
                    problems.append(f"{name}: stub {stub_members} != runtime {runtime_members}")
            else:
                bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
                for base in bases:
                    if base not in {c.__name__ for c in obj.__mro__}:
                        problems.append(f"{name}: runtime class does not derive from {base}")
        elif isinstance(node, ast.ImportFrom):
            source = importlib.import_module(node.module)
            if getattr(source, name, None) is not obj:
                problems.append(f"{name}: not the runtime {node.module}.{name}")
        elif isinstance(node, ast.Import):
            if not inspect.ismodule(obj):
                problems.append(f"{name}: a module in the stub, {type(obj)} at run time")
        elif isinstance(node, ast.AnnAssign):
            expected = {"str": str, "float": float, "int": int, "bool": bool}.get(
                ast.unparse(node.annotation)
            )
            if expected is not None and not isinstance(obj, expected):
                problems.append(f"{name}: annotated {expected.__name__}, is {obj!r}")
    # every public runtime name has a stub: __all__ when there is one, else every public
    # function, class or constant defined by the module itself
    if hasattr(module, "__all__"):
        public = set(module.__all__)
    else:
        public = {
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and not inspect.ismodule(obj)
            and getattr(obj, "__module__", module_name) == module_name
        }
    missing = sorted(public - set(items))
    if missing:
        problems.append(f"public at run time, missing from the stub: {missing}")
    assert not problems, f"{stub_path(module_name)}:\n  " + "\n  ".join(problems)


def test_py_typed_marker_beside_the_package():
    assert (Path(norbert.__file__).parent / "py.typed").is_file()


def test_user_script_runs():
    proc = subprocess.run(
        [sys.executable, str(USER_SCRIPT)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


# -- mypy --------------------------------------------------------------------------------


def _installed_layout():
    """True for a regular install: norbert/_core lives inside the norbert package."""
    return (Path(norbert.__file__).parent / "_core" / "__init__.py").is_file()


@pytest.fixture(scope="module")
def mypy_env(tmp_path_factory):
    """(environment, stub root) for running mypy on a user's script.

    A regular install is checked as users get it: found on site-packages through py.typed.
    An editable install serves src/_core under another name, which mypy cannot follow, so
    its stubs are staged into a directory on MYPYPATH instead.
    """
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    root = tmp_path_factory.mktemp("stubs")
    for module_name in MODULES:
        target = root / Path(*module_name.split("."))
        path = stub_path(module_name)
        if path.name == "__init__.pyi":
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / "__init__.pyi")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target.with_suffix(".pyi"))
    (root / "norbert" / "py.typed").write_text("")
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    if not _installed_layout():
        env["MYPYPATH"] = str(root)
    return env, root


def _mypy(args, cwd, env):
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_mypy_strict_accepts_the_stubs(mypy_env, tmp_path):
    env, root = mypy_env
    code, out = _mypy(["-p", "norbert"], cwd=root, env=dict(env, MYPYPATH=str(root)))
    assert code == 0, out


def test_mypy_strict_accepts_a_user_script(mypy_env, tmp_path):
    env, _ = mypy_env
    shutil.copy(USER_SCRIPT, tmp_path / "typing_user.py")
    code, out = _mypy(["typing_user.py"], cwd=tmp_path, env=env)
    assert code == 0, out


def test_mypy_strict_rejects_misuse(mypy_env, tmp_path):
    # the stubs are really used: wrong keywords and types are errors, not Any
    env, _ = mypy_env
    (tmp_path / "misuse.py").write_text(
        "import numpy as np\n"
        "import norbert\n"
        "x = np.zeros((4, 3, 2), np.complex64)\n"
        "y = norbert.softmask(np.ones((4, 3, 2, 2)), x, logit='high')\n"
        "norbert.wiener(np.ones((4, 3, 2, 2)), x, worker=2)\n"
        "n: str = norbert.get_num_threads()\n"
    )
    code, out = _mypy(["misuse.py"], cwd=tmp_path, env=env)
    assert code == 1, out
    for line in (4, 5, 6):
        assert f"misuse.py:{line}: error" in out, out
