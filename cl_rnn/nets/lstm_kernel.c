/* The recurrence of an LSTM layer (gate blocks o, i, f, g), forward and backward; see lstm.py.

   Compiled once per element type by lstm_kernel.py with -DREAL=float -DEXP=expf -DSFX=_f32
   (or double / exp / _f64).  Portable C: the two x86 parts below are left out on other CPUs, and
   with -DCL_RNN_PORTABLE (what the tests use to build the other CPUs' kernel on x86). */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CL_RNN_PORTABLE)
/* Saturated gates (the study's raw 0..255 inputs) multiply tiny numbers into denormals, which cost
   an x86 CPU a microcode assist each (3x slower steps): both entry points flush them to zero.
   Other CPUs handle denormals at full speed. */
#include <xmmintrin.h>
#define FLUSH_DENORMALS_BEGIN unsigned int saved_csr = _mm_getcsr(); _mm_setcsr(saved_csr | 0x8040);
#define FLUSH_DENORMALS_END _mm_setcsr(saved_csr);
#else
#define FLUSH_DENORMALS_BEGIN
#define FLUSH_DENORMALS_END
#endif

#if defined(__GLIBC__) && defined(__x86_64__) && !defined(CL_RNN_PORTABLE)
/* glibc's vectorised exp (libmvec).  glibc declares it only under full -ffast-math, which would
   also let the compiler assume no NaN (and a diverging run must show NaN): declare it here. */
#pragma omp declare simd notinbranch
extern float expf(float);
#pragma omp declare simd notinbranch
extern double exp(double);
#endif

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define INLINE static inline __attribute__((always_inline))

/* Sigmoid and tanh through exp of a clamped argument: glibc's vector exp is slow for any lane
   beyond +-87, and sigmoid(+-40) and tanh(+-20) already equal their limits in float and double.
   Clamp, exp and the rest are separate loops over a scratch row: within one loop gcc turns
   exp(clamp(x)) into a select of exp(x), calling exp on the raw argument.  The select-based clamp
   keeps NaN (a diverging run must show NaN). */
INLINE REAL CAT(clamp, SFX)(REAL x, REAL limit) { return x > limit ? limit : (x < -limit ? -limit : x); }
INLINE void CAT(sigmoid_row, SFX)(REAL *restrict out, const REAL *in, int n, REAL *restrict tmp) {
    for (int j = 0; j < n; j++) tmp[j] = -CAT(clamp, SFX)(in[j], 40);
    for (int j = 0; j < n; j++) tmp[j] = EXP(tmp[j]);
    for (int j = 0; j < n; j++) out[j] = (REAL)1 / ((REAL)1 + tmp[j]);
}
INLINE void CAT(act_row, SFX)(REAL *restrict out, const REAL *in, int n, const int kind, REAL *restrict tmp) {
    if (kind == 0) {
        for (int j = 0; j < n; j++) tmp[j] = (REAL)2 * CAT(clamp, SFX)(in[j], 20);
        for (int j = 0; j < n; j++) tmp[j] = EXP(tmp[j]);
        for (int j = 0; j < n; j++) out[j] = (REAL)1 - (REAL)2 / (tmp[j] + (REAL)1);
    } else if (kind == 1) {
        for (int j = 0; j < n; j++) out[j] = in[j] > 0 ? in[j] : (REAL)0;
    } else {
        for (int j = 0; j < n; j++) out[j] = in[j];
    }
}
INLINE REAL CAT(dact, SFX)(REAL y, const int kind) {  /* derivative, from the output */
    if (kind == 0) return (REAL)1 - y * y;
    if (kind == 1) return y > 0 ? (REAL)1 : (REAL)0;
    return (REAL)1;
}

/* out (G) += sum_k v[k] * m[k, :] for m (K, G) row-major.  Columns in register blocks, and
   PARTS interleaved partial sums over k, so that enough independent FMA chains hide latency. */
#define PARTS 4
#define BLOCK(width)                                                          \
    for (; j + width <= G; j += width) {                                      \
        REAL acc[PARTS][width];                                               \
        for (int q = 0; q < width; q++) {                                     \
            acc[0][q] = out[j + q];                                           \
            for (int p = 1; p < PARTS; p++) acc[p][q] = 0;                    \
        }                                                                     \
        int k = 0;                                                            \
        for (; k + PARTS <= K; k += PARTS)                                    \
            for (int p = 0; p < PARTS; p++) {                                 \
                const REAL vk = v[k + p];                                     \
                const REAL *restrict row = m + (long)(k + p) * G + j;         \
                for (int q = 0; q < width; q++) acc[p][q] += vk * row[q];     \
            }                                                                 \
        for (; k < K; k++)                                                    \
            for (int q = 0; q < width; q++) acc[0][q] += v[k] * m[(long)k * G + j + q]; \
        for (int q = 0; q < width; q++) {                                     \
            REAL sum = acc[0][q];                                             \
            for (int p = 1; p < PARTS; p++) sum += acc[p][q];                 \
            out[j + q] = sum;                                                 \
        }                                                                     \
    }
INLINE void CAT(vecmat, SFX)(REAL *restrict out, const REAL *restrict v, const REAL *restrict m, int K, int G) {
    int j = 0;
    BLOCK(32)
    BLOCK(16)
    for (; j < G; j++) {
        REAL acc = out[j];
        for (int k = 0; k < K; k++) acc += v[k] * m[(long)k * G + j];
        out[j] = acc;
    }
}
#undef BLOCK
#undef PARTS

INLINE void CAT(forward_step, SFX)(int t, int lo, int hi, int N, int H, REAL *restrict acts, const REAL *restrict wt,
                                   const REAL *restrict b_ih, const REAL *restrict b_hh,
                                   const REAL *restrict gain, const int kind, REAL *restrict cells,
                                   REAL *restrict squashed, REAL *restrict hs) {
    const int G = 4 * H;
    REAL tmp[G + H];
    for (int n = lo; n < hi; n++) {
        const long row = (long)t * N + n;
        REAL *restrict a = acts + row * G;
        for (int j = 0; j < G; j++) a[j] += b_ih[j] + b_hh[j];
        if (t > 0) CAT(vecmat, SFX)(a, hs + (row - N) * H, wt, H, G);
        CAT(sigmoid_row, SFX)(a, a, 3 * H, tmp);
        CAT(act_row, SFX)(a + 3 * H, a + 3 * H, H, kind, tmp);
        const REAL *restrict o = a, *restrict i = a + H, *restrict f = a + 2 * H, *restrict g = a + 3 * H;
        REAL *restrict c = cells + row * H, *restrict s = squashed + row * H, *restrict h = hs + row * H;
        if (t > 0) {
            const REAL *restrict cp = c - (long)N * H;
            for (int k = 0; k < H; k++) c[k] = f[k] * cp[k] + i[k] * g[k];
        } else {
            for (int k = 0; k < H; k++) c[k] = i[k] * g[k];
        }
        if (gain) {
            for (int k = 0; k < H; k++) tmp[G + k] = gain[k] * c[k];
            CAT(act_row, SFX)(s, tmp + G, H, kind, tmp);
        } else {
            CAT(act_row, SFX)(s, c, H, kind, tmp);
        }
        for (int k = 0; k < H; k++) h[k] = o[k] * s[k];
    }
}

/* Samples do not interact: with OpenMP (-fopenmp) ``threads`` threads each run the whole recurrence
   for their own contiguous block of rows, with no barrier between steps, and every number is what one
   thread computes.  Without OpenMP the pragmas are ignored and one thread runs all rows. */
INLINE void CAT(row_block, SFX)(int N, int *lo, int *hi) {
#ifdef _OPENMP
    const int part = omp_get_thread_num(), parts = omp_get_num_threads();
#else
    const int part = 0, parts = 1;
#endif
    *lo = (int)((long)N * part / parts);
    *hi = (int)((long)N * (part + 1) / parts);
}

/* acts (T,N,4H): in: input projection x W_ih^T (no bias); out: gate activations.  wt (H,4H): w_hh
   transposed.  b_ih, b_hh (4H).  gain (H) or NULL.  cells, squashed (= act(gain * c)), hs (T,N,H): out. */
void CAT(lstm_forward, SFX)(int T, int N, int H, REAL *restrict acts, const REAL *restrict wt,
                            const REAL *restrict b_ih, const REAL *restrict b_hh,
                            const REAL *restrict gain, int kind, REAL *restrict cells,
                            REAL *restrict squashed, REAL *restrict hs, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        FLUSH_DENORMALS_BEGIN
        int lo, hi;
        CAT(row_block, SFX)(N, &lo, &hi);
        for (int t = 0; t < T; t++) {
            if (kind == 0) CAT(forward_step, SFX)(t, lo, hi, N, H, acts, wt, b_ih, b_hh, gain, 0, cells, squashed, hs);
            else if (kind == 1) CAT(forward_step, SFX)(t, lo, hi, N, H, acts, wt, b_ih, b_hh, gain, 1, cells, squashed, hs);
            else CAT(forward_step, SFX)(t, lo, hi, N, H, acts, wt, b_ih, b_hh, gain, 2, cells, squashed, hs);
        }
        FLUSH_DENORMALS_END
    }
}

INLINE void CAT(backward_step, SFX)(int T, int t, int lo, int hi, int N, int H, const REAL *restrict acts,
                                    const REAL *restrict cells, const REAL *restrict squashed,
                                    const REAL *restrict w_hh, const REAL *restrict gain, const int kind,
                                    const REAL *restrict d_hs, REAL *restrict d_acts,
                                    REAL *restrict d_acts_t, REAL *restrict dc, REAL *restrict dh) {
    const int G = 4 * H;
    const long TN = (long)T * N;
    for (int n = lo; n < hi; n++) {
        const long row = (long)t * N + n;
        const REAL *restrict a = acts + row * G;
        const REAL *restrict o = a, *restrict i = a + H, *restrict f = a + 2 * H, *restrict g = a + 3 * H;
        const REAL *restrict s = squashed + row * H;
        REAL *restrict d = d_acts + row * G;
        REAL *restrict dcn = dc + (long)n * H;
        for (int k = 0; k < H; k++) dh[k] = d_hs[row * H + k];
        if (t < T - 1) {
            CAT(vecmat, SFX)(dh, d_acts + (row + N) * G, w_hh, G, H);
            const REAL *restrict fnext = acts + (row + N) * G + 2 * H;
            for (int k = 0; k < H; k++) dcn[k] *= fnext[k];
        } else {
            for (int k = 0; k < H; k++) dcn[k] = 0;
        }
        for (int k = 0; k < H; k++) {
            const REAL to_c = o[k] * CAT(dact, SFX)(s[k], kind) * gain[k];
            dcn[k] += dh[k] * to_c;
            d[k] = dh[k] * s[k] * o[k] * ((REAL)1 - o[k]);
            d[H + k] = dcn[k] * g[k] * i[k] * ((REAL)1 - i[k]);
            d[3 * H + k] = dcn[k] * i[k] * CAT(dact, SFX)(g[k], kind);
        }
        if (t > 0) {
            const REAL *restrict cp = cells + (row - N) * H;
            for (int k = 0; k < H; k++) d[2 * H + k] = dcn[k] * cp[k] * f[k] * ((REAL)1 - f[k]);
        } else {
            for (int k = 0; k < H; k++) d[2 * H + k] = 0;
        }
    }
    /* this step's rows (N, G) -> d_acts_t[:, t, :], in 16 x 16 tiles (a scatter per row costs 3x more) */
    const REAL *restrict block = d_acts + (long)t * N * G;
    for (int n0 = lo; n0 < hi; n0 += 16)
        for (int j0 = 0; j0 < G; j0 += 16) {
            const int n1 = n0 + 16 < hi ? n0 + 16 : hi, j1 = j0 + 16 < G ? j0 + 16 : G;
            for (int j = j0; j < j1; j++)
                for (int n = n0; n < n1; n++) d_acts_t[j * TN + (long)t * N + n] = block[(long)n * G + j];
        }
}

/* d_acts_t (4H,T,N): out, gradients of the preactivations, gate-major (so that dW = d_acts_t X is a
   matmul of plain row-major operands).  d_acts (T,N,4H): the same, row-major (scratch for the
   recurrence).  w_hh (4H,H).  d_hs (T,N,H): gradient of every step's output.  dc (N,H): scratch.
   Rows split between ``threads`` threads as in the forward. */
void CAT(lstm_backward, SFX)(int T, int N, int H, const REAL *restrict acts, const REAL *restrict cells,
                             const REAL *restrict squashed, const REAL *restrict w_hh,
                             const REAL *restrict gain, int kind, const REAL *restrict d_hs,
                             REAL *restrict d_acts, REAL *restrict d_acts_t, REAL *restrict dc, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        FLUSH_DENORMALS_BEGIN
        REAL ones[H], dh[H];
        for (int k = 0; k < H; k++) ones[k] = 1;
        const REAL *restrict g = gain ? gain : ones;
        int lo, hi;
        CAT(row_block, SFX)(N, &lo, &hi);
        for (int t = T - 1; t >= 0; t--) {
            if (kind == 0) CAT(backward_step, SFX)(T, t, lo, hi, N, H, acts, cells, squashed, w_hh, g, 0, d_hs, d_acts,
                                                    d_acts_t, dc, dh);
            else if (kind == 1) CAT(backward_step, SFX)(T, t, lo, hi, N, H, acts, cells, squashed, w_hh, g, 1, d_hs,
                                                         d_acts, d_acts_t, dc, dh);
            else CAT(backward_step, SFX)(T, t, lo, hi, N, H, acts, cells, squashed, w_hh, g, 2, d_hs, d_acts,
                                          d_acts_t, dc, dh);
        }
        FLUSH_DENORMALS_END
    }
}
