/* Row-major GEMM on top of a Fortran (column-major) sgemm handed in at run time.
 * The extension hands in scipy.linalg.cython_blas.sgemm once at import. */
#ifndef PDN_BLAS_H
#define PDN_BLAS_H

typedef void (*pdn_sgemm_t)(char *transa, char *transb, int *m, int *n, int *k,
                            float *alpha, float *a, int *lda, float *b, int *ldb,
                            float *beta, float *c, int *ldc);

void pdn_set_sgemm(pdn_sgemm_t fn);

/* C[M,N] = alpha * op(A) @ op(B) + beta * C, all row-major; op(A) is M x K, op(B) K x N.
 * lda/ldb/ldc are row strides (elements). Returns 0, or -1 when no sgemm was set. */
int pdn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* OpenMP thread count of the C core (no-ops without OpenMP). */
void pdn_set_num_threads(int n);
int pdn_get_num_threads(void);

#endif
