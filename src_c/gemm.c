#include "blas.h"
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static pdn_sgemm_t pdn_sgemm = NULL;

void pdn_set_sgemm(pdn_sgemm_t fn) { pdn_sgemm = fn; }

int pdn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!pdn_sgemm) return -1;
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
