"""Small Hermitian solves (one TF point), for Python tests and downstream C code.

The solvers themselves are inline functions of _linalg.pxd, so kernels get them inlined;
this module adds a non-inline entry point `hermitian_solve` for the public C API and a
batched Python wrapper used by the tests.
"""


cdef int hermitian_solve(Py_ssize_t n, double* A, double* b) noexcept nogil:
    """Solve A z = b for one Hermitian positive semi-definite n x n matrix.

    A is (n, n, 2) interleaved re/im, row-major; its lower triangle is read and, for n >= 3,
    overwritten. b (n, 2) is overwritten by z. Returns 0, 1 (A is zero: z = 0) or -1 (NaN/inf).
    Thread-safe: it touches only A and b.
    """
    cdef double z[4]
    cdef int st
    cdef Py_ssize_t i
    if n == 1:
        st = solve_hermitian_1x1(A[0], b[0], b[1], z)
        b[0] = z[0]
        b[1] = z[1]
        return st
    if n == 2:
        st = solve_hermitian_2x2(A[0], A[6], A[2], A[3], b[0], b[1], b[2], b[3], z)
        b[0] = z[0]
        b[1] = z[1]
        b[2] = z[2]
        b[3] = z[3]
        return st
    st = solve_hermitian_ldl(n, A, b)
    for i in range(2 * n):
        if b[i] - b[i] != 0.0:        # NaN/inf off the diagonal shows up in z
            return -1
    return st


def solve(double[:, :, :, ::1] A not None, double[:, :, ::1] b not None):
    """Solve A[i] z = b[i] in place for a batch: A (N, n, n, 2), b (N, n, 2); returns statuses."""
    cdef Py_ssize_t i, n = A.shape[1]
    out = []
    for i in range(A.shape[0]):
        out.append(hermitian_solve(n, &A[i, 0, 0, 0], &b[i, 0, 0]))
    return out
