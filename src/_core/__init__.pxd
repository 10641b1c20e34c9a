# The public C-level API of norbert's compiled core.
#
#     from norbert._core cimport hermitian_solve, stats_kernel, filter_kernel
#
# Build downstream extensions with include_path=[norbert.get_include()]. Every function is
# `noexcept nogil`, creates no Python objects and returns an int Status (0 = OK, see
# norbert._core._common.Status); the caller allocates every array. All are thread-safe
# as long as concurrent calls do not write to the same arrays. Complex numbers never
# cross this interface by value: matrices and vectors are interleaved (re, im) doubles or
# typed memoryviews of complex64/complex128 (`complex_t`) and float32/float64 (`floating`).
#
# hermitian_solve(n, A, b)
#     Solve A z = b for one n x n Hermitian positive semi-definite matrix, any n >= 1.
#     A: double[n * n * 2] (row-major, interleaved re/im; lower triangle read, and for
#     n >= 3 overwritten); b: double[n * 2], overwritten by z. Returns 0, 1 (A = 0, z = 0)
#     or -1 (NaN/inf). Pivots below 1e-13 * max(diag A) are raised to that floor.
#
# stats_kernel(mode, x, v, y_in, P, R, scale, eps, logit, slope, Rnum, weight, work, n_threads)
#     The EM statistics for a block of frames: for the estimate chosen by `mode`
#     (Estimate.GIVEN: y_in; SOFTMASK / PHASE: from v and x; MODEL: the filter of P and R),
#     writes the PSDs P (frames, bins, J) and adds sum_t y y^H (upper triangle) to
#     Rnum (bins, J, C, C, 2) and sum_t P to weight (bins, J). Call it on consecutive
#     blocks, in order, to get the sums of a whole track. work: double[n_threads, >= 
#     2*C*J + 2*C*C + 2*C]. Arrays a mode does not use may be empty.
#
# finalize_covariance_kernel(Rnum, weight, eps, R_out)
#     R_out = Rnum / (eps + weight), Hermitian (0 where eps + weight = 0).
#
# filter_kernel(mode, x, v, P, R, scale, eps, logit, slope, out_scale, y_out, work, n_threads)
#     Writes the estimate of `mode` (SOFTMASK, PHASE or MODEL) for a block of frames into
#     y_out (frames, bins, C, J), times out_scale; with MODEL, y_j = v_j R_j Cxx^-1 x.
#
# mix_model_kernel(v, R, Cxx_out, n_threads), gain_kernel(v_j, R_j, inv_Cxx, G_out,
# n_threads), apply_filter_kernel(x, W, y_out, n_threads)
#     get_mix_model, wiener_gain and apply_filter of the Python API, in double.

from norbert._core._common cimport Status, Estimate, complex_t
from norbert._core._linalg cimport hermitian_solve
from norbert._core._stats cimport stats_kernel, finalize_covariance_kernel
from norbert._core._filter cimport (
    filter_kernel, mix_model_kernel, gain_kernel, apply_filter_kernel,
)
