# Stubs for norbert._core._linalg (Cython); hermitian_solve itself is in _linalg.pxd.

import numpy as np
import numpy.typing as npt

def solve(
    A: npt.NDArray[np.float64],  # double[:, :, :, ::1]  (N, n, n, 2), overwritten for n >= 3
    b: npt.NDArray[np.float64],  # double[:, :, ::1]     (N, n, 2), overwritten by z
) -> list[int]: ...
