#ifndef PDN_BATCHNORM_H
#define PDN_BATCHNORM_H
#include <stddef.h>

/* x[N,C,spatial] += b[c] */
void pdn_add_bias(float *x, const float *b, int N, int C, ptrdiff_t spatial);

/* Darknet's inference batchnorm, fused (normalize_cpu, scale_bias, add_bias):
 * x = (x - mean) / sqrt(var + eps); x *= scale; x += bias.  The division is done like
 * Darknet's normalize_cpu (float difference over the double sqrt of var + eps in
 * float), then rounded to float. */
void pdn_batchnorm_inference(float *x, const float *scale, const float *mean,
                             const float *var, const float *bias, float eps,
                             int N, int C, ptrdiff_t spatial);

#endif
