# Stubs for norbert._core._mask (Cython); the per-TF-point maths is inline in _mask.pxd.

SLOPE: float
