"""CPU torch tensors in, torch tensors out, for every public function (no copies).

``accepts_tensors(func)`` wraps a function of NumPy arrays. A call without tensors goes
straight through. A call with tensors among its arguments (``x``, ``v``, ``out=``, ...)
passes their NumPy views instead (``Tensor.numpy()`` shares the tensor's memory), and
every array the function returns comes back as a tensor over the same memory
(``torch.from_numpy``); the tensor given as ``out=`` is returned as that very object.

torch is never imported here: a tensor can only exist once its user imported torch, so a
call looks for ``sys.modules["torch"]`` first and pays nothing when it is absent.
"""

import functools
import sys

import numpy as np

__all__ = ["accepts_tensors", "as_array", "is_tensor"]


def _torch():
    return sys.modules.get("torch")


def is_tensor(a):
    """True for a torch.Tensor, without importing torch."""
    torch = _torch()
    return torch is not None and isinstance(a, torch.Tensor)


def as_array(t, name="a tensor"):
    """The NumPy view of a CPU tensor, without copying its data.

    Conjugate and negative bits (lazy ``t.conj()``, ``-t`` views) are resolved first,
    which copies: NumPy has no such flags. A 0-d tensor becomes a Python scalar, so that
    ``eps=torch.tensor(1e-10)`` works as a float does.
    """
    if t.requires_grad:
        raise TypeError(
            f"{name} requires grad: norbert's filter is not differentiable. Pass "
            f"{name}.detach() (or call it under torch.no_grad()) and keep a torch "
            "implementation where the filter is part of a training loss"
        )
    if t.device.type != "cpu":
        raise TypeError(
            f"{name} is on the {t.device} device: norbert computes on the CPU. Pass "
            f"{name}.cpu() and move the result back with .to({str(t.device)!r})"
        )
    if t.layout is not _torch().strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    try:
        a = t.numpy()
    except TypeError as exc:  # bfloat16, complex32, quantized: no NumPy dtype
        raise TypeError(f"{name} has dtype {t.dtype}, which NumPy cannot hold: {exc}") from None
    return a.item() if a.ndim == 0 else a


def as_tensor(a):
    """A tensor over the memory of an ndarray result (a copy only if torch cannot share it)."""
    torch = _torch()
    if not a.flags.writeable or any(s < 0 for s in a.strides) or not a.dtype.isnative:
        # torch.from_numpy refuses (or warns about) these; norbert's own results never are
        a = np.array(a, dtype=a.dtype.newbyteorder("="))
    return torch.from_numpy(a)


def _convert(result, out_array, out_tensor):
    if isinstance(result, tuple):
        return tuple(_convert(r, out_array, out_tensor) for r in result)
    if isinstance(result, np.ndarray):
        if out_tensor is not None and result is out_array:
            return out_tensor
        return as_tensor(result)
    return result


def accepts_tensors(func):
    """Let `func` take CPU torch tensors wherever it takes arrays, and then return tensors.

    The wrapper keeps `func`'s name, docstring and signature (``functools.wraps``).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        torch = _torch()
        if torch is None:
            return func(*args, **kwargs)
        Tensor = torch.Tensor
        if not any(isinstance(a, Tensor) for a in args) and not any(
            isinstance(a, Tensor) for a in kwargs.values()
        ):
            return func(*args, **kwargs)
        names = list(_parameter_names(func))
        args = [
            as_array(a, names[i] if i < len(names) else "a tensor") if isinstance(a, Tensor) else a
            for i, a in enumerate(args)
        ]
        out_tensor = kwargs.get("out")
        out_tensor = out_tensor if isinstance(out_tensor, Tensor) else None
        if out_tensor is not None and (out_tensor.is_conj() or out_tensor.is_neg()):
            # its NumPy view would be a resolved copy: the results would never reach it
            raise TypeError(
                "out is a lazy conjugate or negative view (t.conj(), -t): norbert cannot "
                "write through it. Pass a plain tensor (e.g. torch.empty_like(out)) and "
                "conjugate the result"
            )
        kwargs = {k: as_array(a, k) if isinstance(a, Tensor) else a for k, a in kwargs.items()}
        result = func(*args, **kwargs)
        return _convert(result, kwargs.get("out"), out_tensor)

    return wrapper


@functools.cache
def _parameter_names(func):
    """Positional parameter names, for error messages (computed on the first tensor call)."""
    import inspect

    return tuple(
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
