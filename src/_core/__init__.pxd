# The public C-level API of norbert's compiled core.
#
#     from norbert._core cimport hermitian_solve, stats_kernel, Status, Estimate
#
# Build a downstream extension with Cython >= 3.0 and norbert.get_include() on Cython's
# include path (`cythonize(..., include_path=[norbert.get_include()])`, or `cython -I`);
# no numpy headers and no OpenMP flags are needed (the kernels' threads run inside
# norbert's own extension modules). At import, the extension looks the functions up in
# the installed norbert._core modules, and Cython checks their C signatures there:
# rebuild downstream code against each norbert release (the API is stable at the source
# level; a changed signature here is an API change listed in the changelog).
#
# Conventions shared by every function below
# -------------------------------------------
# * `noexcept nogil`: call them with or without the GIL, from any thread. They raise
#   nothing, create no Python objects, allocate no memory and never print.
# * They return an int `Status` (0 = Status.OK); the caller turns it into an error:
#       OK 0          success
#       BAD_SHAPE 1   the views' shapes do not fit together (nothing was written)
#       NOT_FINITE 2  NaN or inf met in an input, or produced by overflow
#       SMALL_WORK 3  `work` has fewer than work_size(C, J) columns (nothing was written)
#       NEGATIVE 4    a spectrogram v has a negative entry
#       BAD_MODE 5    `mode` is not an Estimate the function accepts
#   With NOT_FINITE and NEGATIVE the call completes, and the outputs are meaningless
#   where the bad input was; which code a call with several problems returns is not
#   specified. hermitian_solve is the exception: it returns 0, 1 or -1, see below.
# * The caller allocates every array, including outputs and scratch, and keeps it alive
#   during the call. Memoryviews are C-contiguous (`::1`) where the declaration says so,
#   must not be None, and may be read-only (`const`) for inputs (np.memmap(mode="r"),
#   np.broadcast_to, ...). Only O(1) shape checks are made: indices are not checked.
#   An argument that the chosen `mode` does not read may be an empty array
#   (e.g. np.empty((0, 0, 0, 0), np.float64)) but must have the declared type.
# * Cython chooses a fused function's specialisation by matching each memoryview's type
#   exactly, layout included: declare your views with the axes written below (P is
#   strided, `[:, :, :]`; most others end in `::1`), or name the specialisation through
#   a ctypedef (`ctypedef double complex zcomplex`, then `stats_kernel[zcomplex,
#   double](...)`); otherwise Cython reports "no suitable method found". Passing a
#   writable view where a `const` one is declared is fine.
# * Precision: `complex_t` is float complex or double complex (complex64 / complex128
#   arrays), `floating` is float or double (float32 / float64); the two specialise
#   independently, so all four pairs exist. Arithmetic runs in double and results are
#   stored in the outputs' precision; sums over frames (Rnum, weight) and R stay double.
#   Complex numbers never cross this interface by value (C99 _Complex, C++ std::complex
#   and MSVC's struct differ): only memoryviews or pointers to interleaved (re, im)
#   doubles.
# * Layouts, with T frames, F bins, C channels, J sources:
#       x      complex_t (T, F, C)             the mixture STFT
#       v      floating  (T, F, 1 or C, J)     source spectrograms, >= 0
#       y      complex_t (T, F, C, J)          source images
#       P      floating  (T, F, J)             power spectral densities of the sources;
#                                              sources or bins contiguous: a (T, J, F)
#                                              array seen through .transpose(0, 2, 1)
#                                              (what norbert itself uses) is read in
#                                              place by the stereo passes, a C-contiguous
#                                              (T, F, J) one is gathered per tile
#       R      double    (F, J, C, C, 2)       spatial covariances, full Hermitian,
#                                              interleaved (re, im); the documented
#                                              (F, C, C, J) complex R of the Python API is
#                                              R.view(complex128)[..., 0].transpose(0, 2, 3, 1)
#       Rnum   double    (F, J, C, C, 2)       sums of y y^H over frames, upper triangle
#       weight double    (F, J)                sums of P over frames
#       work   double    (rows, >= work_size(C, J))  scratch, one row per thread
# * Threads: n_threads is an upper bound (values < 1 mean 1); a kernel uses at most
#   `rows` threads and fewer on small blocks. A range of frequency bins is held by one
#   thread at a time, which adds frames in order, so results are bitwise identical for
#   any n_threads. The
#   functions are thread-safe: concurrent calls are fine as long as they do not write to
#   the same arrays (outputs, Rnum/weight, work). Called from inside an OpenMP parallel
#   region, a kernel's own region is nested and runs on one thread unless nesting is
#   enabled. After fork() use n_threads = 1 in the child (GNU libgomp's pool does not
#   survive fork).
#
# Py_ssize_t work_size(Py_ssize_t C, Py_ssize_t J)
#     Columns of `work` that stats_kernel and filter_kernel need for C channels and J
#     sources. Allocate work = np.empty((n_threads, work_size(C, J))). Not inline: it is
#     looked up in the installed norbert like the kernels, so an extension built against
#     an older norbert still allocates what the installed kernels need (an inline copy
#     would keep the old value, and a changed scratch layout would turn into SMALL_WORK).
#
# int hermitian_solve(Py_ssize_t n, double* A, double* b)
#     Solve A z = b for one n x n Hermitian positive semi-definite matrix, any n >= 1
#     (closed forms for n = 1, 2; an LDL^H factorisation without square roots above).
#     A    double[n * n * 2], row-major, interleaved (re, im): A[(i*n + k)*2 + 0/1].
#          Only the lower triangle and the real diagonal are read. IN for n <= 2;
#          INOUT for n >= 3, where it is overwritten by the factors L and D.
#     b    double[n * 2], interleaved; INOUT: the right-hand side on entry, z on exit.
#     Returns 0 on success; 1 if max(diag A) <= 0 (z = 0: every source is silent there);
#     -1 if the diagonal of A (for n <= 2, any entry) holds NaN or inf; NaN or inf
#     elsewhere, or in b, propagate into z. Never fails on singular matrices: a pivot below
#     1e-13 * max(diag A) is raised to that floor (diagonal loading where the
#     factorisation would break down). Thread-safe: it touches only A and b.
#
# int stats_kernel[complex_t, floating](int mode, x, v, y_in, P, R, double scale,
#         double eps, double logit, double slope, Rnum, weight, work, int n_threads)
#     The statistics pass of the EM for one block of frames: with y the estimate chosen
#     by `mode`, computed on x * scale (and y_in * scale),
#         P[t, f, j]         = mean_c |y[t, f, c, j]|^2                   (written)
#         weight[f, j]      += P[t, f, j]                                 (added)
#         Rnum[f, j, c, d]  += y[t, f, c, j] conj(y[t, f, d, j]),  c <= d  (added)
#     mode    Estimate.GIVEN     y = y_in                    (reads x's shape and y_in)
#             Estimate.SOFTMASK  y_j = v_j / (eps + sum_k v_k) x, the soft mask; with
#                                logit >= 0 the mask m becomes 1 / (1 + exp(-slope (m -
#                                logit))); logit < 0 turns that off    (reads x, v)
#             Estimate.PHASE     y_j = v_j exp(i angle(x))   (reads x, v)
#             Estimate.MODEL     y_j = v_j R_j Cxx^-1 x with Cxx = sum_j v_j R_j +
#                                sqrt(eps) I (one channel: + eps as well, as upstream),
#                                v_j = P on entry            (reads x, P, R)
#     x IN, v IN, y_in IN, R IN (the output of finalize_covariance_kernel), P OUT (INOUT
#     for MODEL: the previous PSDs in, the new ones out), Rnum and weight INOUT. Zero
#     Rnum and weight before the first block, then call once per block of frames, in
#     frame order, for the sums of a whole track (same bits as one call on all frames).
#
# int finalize_covariance_kernel(Rnum, weight, double eps, R_out)
#     R_out[f, j] = Rnum[f, j] / (eps + weight[f, j]), written as a full Hermitian matrix
#     (lower triangle = conj of the upper one); 0 where eps + weight = 0 (a source silent
#     over a whole bin). Rnum, weight IN; R_out OUT (F, J, C, C, 2). Single-threaded.
#
# int filter_kernel[complex_t, floating](int mode, x, v, P, R, double scale, double eps,
#         double logit, double slope, double out_scale, y_out, work, int n_threads)
#     The filter pass for one block of frames: writes y_out = out_scale * (the estimate
#     of `mode` on x * scale), mode SOFTMASK, PHASE or MODEL as for stats_kernel (GIVEN
#     gives BAD_MODE). With MODEL this is the EM's Wiener filter y_j = v_j R_j Cxx^-1 x,
#     one Hermitian solve per TF point. x, v, P, R IN; y_out OUT (T, F, C, J). Every TF
#     point is independent: blocks may come in any order.
#
# int mix_model_kernel[complex_t, floating](v, R, Cxx_out, int n_threads)
#     Cxx_out[t, f] = sum_j v[t, f, j] R[f, :, :, j], without regularisation (the
#     Python get_mix_model). v IN floating (T, F, J); R IN complex_t (F, C, C, J), the
#     Python API's layout; Cxx_out OUT complex_t (T, F, C, C). Returns OK or BAD_SHAPE.
#
# int gain_kernel[complex_t, floating](v_j, R_j, inv_Cxx, G_out, int n_threads)
#     G_out[t, f] = v_j[t, f] R_j[f] inv_Cxx[t, f] (the Python wiener_gain). v_j IN
#     floating (T, F); R_j IN complex_t (F, C, C); inv_Cxx IN complex_t (T, F, C, C);
#     G_out OUT complex_t (T, F, C, C). Returns OK or BAD_SHAPE.
#
# int apply_filter_kernel[complex_t](x, W, y_out, int n_threads)
#     y_out[t, f] = W[t, f] x[t, f] (the Python apply_filter). x IN (T, F, C); W IN
#     (T, F, C, C); y_out OUT (T, F, C). Returns OK or BAD_SHAPE.
#
# A whole EM run (norbert.expectation_maximization) from these pieces, streaming over
# blocks of frames; tests/cython_consumer/consumer.pyx is a complete, tested example:
#
#     Rnum[...] = 0; weight[...] = 0
#     for each block b: stats_kernel(Estimate.GIVEN, x[b], no_v, y0[b], P[b], R, 1.0, eps,
#                                    -1.0, 15.0, Rnum, weight, work, n_threads)
#     finalize_covariance_kernel(Rnum, weight, eps, R)
#     repeat iterations - 1 times: the same with Estimate.MODEL (P is updated in place)
#     for each block b: filter_kernel(Estimate.MODEL, x[b], no_v, P[b], R, 1.0, eps, -1.0,
#                                     15.0, 1.0, y[b], work, n_threads)
#
# The online (causal) filter of norbert.OnlineWiener, frame by frame (_online.pxd), for a
# plug-in's audio callback. The caller keeps a stream's state: Rnum (F, J, C, C, 2) and
# weight (F, J), doubles zeroed at the start of the stream, and the x and P of the frames
# not filtered yet. 1-D and 2-D views here are one frame: x (F, C), v (F, {1, C}, J),
# P (F, J), y (F, C, J); work has online_work_size(C, J) columns per thread.
#
# Py_ssize_t online_work_size(Py_ssize_t C, Py_ssize_t J)
#     Columns of `work` the online kernels need (not inline, for the reason work_size gives).
#
# int online_accumulate_kernel[complex_t, floating](int mode, x, v, double scale,
#         double eps, double forget, P_out, Rnum, weight, work, int n_threads)
#     Adds one frame: with y0 the initial estimate of `mode` (Estimate.SOFTMASK or
#     Estimate.PHASE, as stats_kernel; no logit) on x * scale,
#         P_out[f, j]       = mean_c |y0[f, c, j]|^2                          (written)
#         weight[f, j]      = forget * weight[f, j] + P_out[f, j]             (updated)
#         Rnum[f, j, c, d]  = forget * Rnum[f, j, c, d] + y0_c conj(y0_d), c <= d
#     x, v IN; P_out OUT; Rnum, weight INOUT. Checks x and v first: on NEGATIVE or
#     NOT_FINITE from bad input nothing was written.
#
# int online_filter_kernel[complex_t, floating](x, P, Rnum, weight, double scale,
#         double eps, double out_scale, y_out, work, int n_threads)
#     Filters one frame with the current sums: R_j = Rnum_j / (eps + weight_j) and
#     y_out[f, :, j] = out_scale * P_j R_j (sum_k P_k R_k + sqrt(eps) I)^-1 x * scale
#     (one channel: + eps as well). P is the frame's own P_out from the accumulate call.
#     x, P, Rnum, weight IN; y_out OUT.
#
#     With lookahead L: accumulate frame t, then filter frame t - L (so keep the x and P of
#     the last L + 1 frames); at the end of the stream, filter the L frames still held.
#     forget = 1, L >= T and scale = out_scale = 1 give wiener(iterations=1).
#
# int online_process_kernel[complex_t, floating](int mode, x, v, double scale, double eps,
#         double forget, double out_scale, Py_ssize_t frames_in, Py_ssize_t frames_out,
#         x_ring, P_ring, Rnum, weight, y_out, work, int n_threads)
#     A block of n frames (x (n, F, C), v (n, F, {1, C}, J)) through the two steps above,
#     keeping frame t in slot t % (L + 1) of x_ring (L + 1, F, C) and P_ring (L + 1, F, J),
#     INOUT. frames_in / frames_out: frames accumulated / filtered before the call
#     (0 <= frames_in - frames_out <= L). y_out (m, F, C, J) OUT receives frames
#     frames_out .. frames_out + m - 1, m = max(0, frames_in + n - L - frames_out).
#     Checks every input before changing the state: on NEGATIVE or NOT_FINITE from bad
#     input nothing was written.
#
# Status and Estimate are also Python IntEnums: norbert._core.Status, norbert._core.Estimate.

from norbert._core._common cimport Status, Estimate, complex_t, work_size
from norbert._core._linalg cimport hermitian_solve
from norbert._core._stats cimport stats_kernel, finalize_covariance_kernel
from norbert._core._filter cimport (
    filter_kernel, mix_model_kernel, gain_kernel, apply_filter_kernel,
)
from norbert._core._online cimport (
    online_work_size, online_accumulate_kernel, online_filter_kernel, online_process_kernel,
)
