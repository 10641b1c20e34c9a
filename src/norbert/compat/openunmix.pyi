# Type stubs for norbert.compat.openunmix: open-unmix 1.3's filter, computed by norbert.
# Tensors hold complex numbers as a last axis of length 2 (real, imaginary).

from contextlib import AbstractContextManager

from torch import Tensor

__all__ = ["wiener", "expectation_maximization", "patch", "unpatch", "patched"]

TARGETS: tuple[tuple[str, str], ...]

def wiener(
    targets_spectrograms: Tensor,
    mix_stft: Tensor,
    iterations: int = 1,
    softmask: bool = False,
    residual: bool = False,
    scale_factor: float = 10.0,
    eps: float = 1e-10,
) -> Tensor: ...
def expectation_maximization(
    y: Tensor,
    x: Tensor,
    iterations: int = 2,
    eps: float = 1e-10,
    batch_size: int = 200,
) -> tuple[Tensor, Tensor, list[Tensor]]: ...
def patch() -> list[str]: ...
def unpatch(names: list[str] | None = None) -> None: ...
def patched() -> AbstractContextManager[list[str]]: ...
