/* Row-major GEMM: oneDNN's sgemm where the core is built with it, else (or when switched
 * off) a Fortran (column-major) sgemm handed in at run time: the extension hands in
 * scipy.linalg.cython_blas.sgemm once at import. */
#ifndef PDN_BLAS_H
#define PDN_BLAS_H

typedef void (*pdn_sgemm_t)(char *transa, char *transb, int *m, int *n, int *k,
                            float *alpha, float *a, int *lda, float *b, int *ldb,
                            float *beta, float *c, int *ldc);

void pdn_set_sgemm(pdn_sgemm_t fn);

/* Whether pdn_gemm uses oneDNN's sgemm (the default where the core is built with oneDNN)
 * rather than the sgemm handed in; returns the setting in force (0 without oneDNN). */
int pdn_set_gemm_onednn(int on);

/* C[M,N] = alpha * op(A) @ op(B) + beta * C, all row-major; op(A) is M x K, op(B) K x N.
 * lda/ldb/ldc are row strides (elements). Returns 0, or -1 when no sgemm was set. */
int pdn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* OpenMP thread count of the C core (no-ops without OpenMP). */
void pdn_set_num_threads(int n);
int pdn_get_num_threads(void);

#endif
