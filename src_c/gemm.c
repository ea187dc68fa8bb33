#include "blas.h"
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef PDN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
/* oneDNN's sgemm runs on the C core's OpenMP threads: with BLAS's own thread pool beside
 * them, idle threads of one spin on the cores the other needs (and it is faster for the
 * convolutions' shapes: about 1.1-2x OpenBLAS's on one AVX-512 core, measured). */
static int pdn_gemm_onednn = 1;
#else
static int pdn_gemm_onednn = 0;
#endif

static pdn_sgemm_t pdn_sgemm = NULL;

void pdn_set_sgemm(pdn_sgemm_t fn) { pdn_sgemm = fn; }

int pdn_set_gemm_onednn(int on)
{
#ifdef PDN_WITH_ONEDNN
    pdn_gemm_onednn = on != 0;
#else
    (void)on;
#endif
    return pdn_gemm_onednn;
}

int pdn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!pdn_sgemm && !pdn_gemm_onednn) return -1;
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0 || alpha == 0.f) {
        /* BLAS semantics: C = beta * C (beta == 0 clears, even NaNs) */
        int i, j;
        for (i = 0; i < M; ++i) {
            float *c = C + (ptrdiff_t)i * ldc;
            if (beta == 0.f) for (j = 0; j < N; ++j) c[j] = 0.f;
            else if (beta != 1.f) for (j = 0; j < N; ++j) c[j] *= beta;
        }
        return 0;
    }
#ifdef PDN_WITH_ONEDNN
    if (pdn_gemm_onednn)
        return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A,
                          lda > 1 ? lda : 1, B, ldb > 1 ? ldb : 1, beta, C,
                          ldc > 1 ? ldc : 1) == dnnl_success ? 0 : -1;
#endif
    /* Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T, and a row-major
     * matrix with row stride ld is its column-major transpose with leading dimension ld. */
    {
        char tb = trans_b ? 'T' : 'N', ta = trans_a ? 'T' : 'N';
        int m = N, n = M, k = K;
        int ldb_ = ldb > 1 ? ldb : 1, lda_ = lda > 1 ? lda : 1, ldc_ = ldc > 1 ? ldc : 1;
        pdn_sgemm(&tb, &ta, &m, &n, &k, &alpha, (float *)B, &ldb_, (float *)A, &lda_,
                  &beta, C, &ldc_);
    }
    return 0;
}

void pdn_set_num_threads(int n)
{
#ifdef _OPENMP
    if (n < 1) n = 1;
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int pdn_get_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
