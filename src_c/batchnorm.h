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

/* Darknet's training batch norm on x[N,C,spatial] in place, per channel: mean, variance
 * (1/(N*spatial-1)) as sequential float sums (batch outer, spatial inner), rolling =
 * keep*rolling + one_minus_keep*stat, x_saved = x, x_norm = (x - mean)/sqrt(var + 1e-5),
 * x = x_norm*scale + bias. mean/var receive the batch statistics. */
void pdn_batchnorm_train(float *x, const float *scale, const float *bias, float *rolling_mean,
                         float *rolling_var, float *mean, float *var, float *x_saved,
                         float *x_norm, float keep, float one_minus_keep, int N, int C,
                         ptrdiff_t spatial);

/* Darknet's batch-norm backward in the -gpusem order on delta[N,C,spatial] in place:
 * bias_grad += sum(delta); scale_grad += sum(delta*x_norm); delta *= scale; then
 * delta = delta/sqrt(var+eps) + variance_delta*2*(x-mean)/M + mean_delta/M, M = N*spatial. */
void pdn_batchnorm_backward(float *delta, const float *x, const float *x_norm,
                            const float *mean, const float *var, const float *scale,
                            float *bias_grad, float *scale_grad, int N, int C,
                            ptrdiff_t spatial);

#endif
