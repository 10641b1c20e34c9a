# Stubs for norbert._core._stereo (Cython): the two-channel kernels' C table is in
# _stereo.pxd; this is the Python-visible part.

def isa() -> str: ...
