#ifndef PDN_BATCHNORM_H
#define PDN_BATCHNORM_H
#include <stddef.h>

/* x[N,C,spatial] += b[c] */
void pdn_add_bias(float *x, const float *b, int N, int C, ptrdiff_t spatial);

/* Darknet's inference batchnorm, fused (normalize_cpu, scale_bias, add_bias):
 * x = (x - mean) / sqrt(var + eps); x *= scale; x += bias.  The quotient is Darknet's
 * (the float difference over the double root of var + eps in float, rounded to float),
 * computed as a product with the double reciprocal, which rounds to the same float. */
void pdn_batchnorm_inference(float *x, const float *scale, const float *mean,
                             const float *var, const float *bias, float eps,
                             int N, int C, ptrdiff_t spatial);

/* Inference layer tail in one pass per channel plane: batch norm (as above; scale NULL:
 * no batch norm, x += bias only), then the elementwise activation ``code``
 * (pdn_activate's codes). Returns 0, or -1 for a code pdn_activate does not take. */
int pdn_bias_bn_activate(float *x, const float *scale, const float *mean, const float *var,
                         const float *bias, float eps, int N, int C, ptrdiff_t spatial,
                         int code);

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
