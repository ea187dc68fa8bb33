/* Bias and batch norm (src_c/batchnorm.c on the GPU), x NCHW as [N, C, spatial].
 *
 * Inference (element-wise, any grid):
 *   pdn_add_bias(x, b, N, C, spatial)                      x += b[c]
 *   pdn_bias_activate(x, b, N, C, spatial, code)           x = f(x + b[c])
 *   pdn_batchnorm_inference(x, scale, mean, var, bias, eps, N, C, spatial)
 *       x = scale * (x - mean) / sqrt(var + eps) + bias    (one pass)
 *   pdn_batchnorm_activate_inference(..., code)            the same, then the activation
 *
 * Training (Darknet's formulas, the -gpusem semantics; count = N * spatial):
 *   pdn_batchnorm_stats(x, mean, var, rolling_mean, rolling_var, keep, one_minus_keep,
 *                       N, C, spatial)                  ONE BLOCK PER CHANNEL (grid-stride
 *       over channels): mean = sum/count, var = sum((x-mean)^2)/(count-1),
 *       rolling = keep*rolling + one_minus_keep*stat
 *   pdn_batchnorm_normalize_train(x, x_saved, x_norm, mean, var, scale, bias, eps, N, C,
 *                                 spatial)              element-wise: x_saved = x,
 *       x_norm = (x - mean)/sqrt(var + eps), x = scale*x_norm + bias
 *   pdn_batchnorm_backward_reduce(delta, x_saved, x_norm, mean, var, scale, bias_grad,
 *                                 scale_grad, mean_delta, var_delta, eps, N, C, spatial)
 *                                                       ONE BLOCK PER CHANNEL:
 *       bias_grad += sum(delta); scale_grad += sum(delta*x_norm);
 *       mean_delta = sum(delta*scale) * -1/sqrt(var+eps);
 *       var_delta = sum(delta*scale*(x-mean)) * -0.5*(var+eps)^-1.5
 *   pdn_batchnorm_backward_delta(delta, x_saved, mean, var, scale, mean_delta, var_delta,
 *                                eps, N, C, spatial)    element-wise, eps inside the root:
 *       delta = delta*scale/sqrt(var+eps) + var_delta*2*(x-mean)/count + mean_delta/count
 *   pdn_backward_bias(bias_grad, delta, N, C, spatial)  ONE BLOCK PER CHANNEL:
 *       bias_grad += sum(delta)   (conv layers without batch norm)
 *
 * The reductions sum in double per thread and over the block: more accurate than Darknet's
 * sequential float chains (whose order no GPU reproduces anyway). */
#include "activations.cuh"

template <class F>
__device__ __forceinline__ void bias_act(float *x, const float *b, int N, int C, int spatial,
                                         F f)
{
    pdn_grid_loop((long long)N * C * spatial, [&](auto i) {
        using I = decltype(i);
        const int c = (int)((i / (I)spatial) % (I)C);
        x[i] = f(x[i] + b[c]);
    });
}

extern "C" __global__ void pdn_add_bias(float *x, const float *b, int N, int C, int spatial)
{
    bias_act(x, b, N, C, spatial, ActLinear());
}

#define PDN_CALL_BIAS_ACT(F) bias_act(x, b, N, C, spatial, F())
extern "C" __global__ void pdn_bias_activate(float *x, const float *b, int N, int C,
                                             int spatial, int code)
{
    PDN_ACT_SWITCH(code, PDN_CALL_BIAS_ACT)
}

template <class F>
__device__ __forceinline__ void bn_act(float *x, const float *scale, const float *mean,
                                       const float *var, const float *bias, float eps, int N,
                                       int C, int spatial, F f)
{
    pdn_grid_loop((long long)N * C * spatial, [&](auto i) {
        using I = decltype(i);
        const int c = (int)((i / (I)spatial) % (I)C);
        float t = (x[i] - mean[c]) / sqrtf(var[c] + eps);
        t *= scale[c];
        x[i] = f(t + bias[c]);
    });
}

extern "C" __global__ void pdn_batchnorm_inference(float *x, const float *scale,
                                                   const float *mean, const float *var,
                                                   const float *bias, float eps, int N, int C,
                                                   int spatial)
{
    bn_act(x, scale, mean, var, bias, eps, N, C, spatial, ActLinear());
}

#define PDN_CALL_BN_ACT(F) bn_act(x, scale, mean, var, bias, eps, N, C, spatial, F())
extern "C" __global__ void pdn_batchnorm_activate_inference(float *x, const float *scale,
                                                            const float *mean, const float *var,
                                                            const float *bias, float eps,
                                                            int N, int C, int spatial, int code)
{
    PDN_ACT_SWITCH(code, PDN_CALL_BN_ACT)
}

/* ---- training ---- */

/* sum over the channel c's N planes of f(value, plane offset), in double; valid in
 * thread 0 of the block */
template <class F>
__device__ __forceinline__ double channel_sum(int N, int C, int spatial, int c, F f)
{
    double s = 0.0;
    for (int b = 0; b < N; ++b) {
        const long long o = ((long long)b * C + c) * spatial;
        for (int i = threadIdx.x; i < spatial; i += blockDim.x) s += f(o + i);
    }
    return pdn_block_sum(s);
}

extern "C" __global__ void pdn_batchnorm_stats(const float *x, float *mean, float *var,
                                               float *rolling_mean, float *rolling_var,
                                               float keep, float one_minus_keep, int N, int C,
                                               int spatial)
{
    __shared__ float m_shared;
    const long long count = (long long)N * spatial;
    for (int c = blockIdx.x; c < C; c += gridDim.x) {
        const double s = channel_sum(N, C, spatial, c, [&](long long k) { return (double)x[k]; });
        if (threadIdx.x == 0) m_shared = (float)(s / (double)count);
        __syncthreads();
        const float m = m_shared;
        const double v = channel_sum(N, C, spatial, c, [&](long long k) {
            const double d = (double)(x[k] - m);
            return d * d;
        });
        if (threadIdx.x == 0) {
            const float vf = (float)(v / (double)(count > 1 ? count - 1 : 1));
            mean[c] = m;
            var[c] = vf;
            rolling_mean[c] = rolling_mean[c] * keep + one_minus_keep * m;
            rolling_var[c] = rolling_var[c] * keep + one_minus_keep * vf;
        }
        __syncthreads();                 /* m_shared is rewritten for the next channel */
    }
}

extern "C" __global__ void pdn_batchnorm_normalize_train(float *x, float *x_saved, float *x_norm,
                                                         const float *mean, const float *var,
                                                         const float *scale, const float *bias,
                                                         float eps, int N, int C, int spatial)
{
    pdn_grid_loop((long long)N * C * spatial, [&](auto i) {
        using I = decltype(i);
        const int c = (int)((i / (I)spatial) % (I)C);
        const float v = x[i];
        const float t = (v - mean[c]) / sqrtf(var[c] + eps);
        x_saved[i] = v;
        x_norm[i] = t;
        x[i] = t * scale[c] + bias[c];
    });
}

extern "C" __global__ void pdn_batchnorm_backward_reduce(const float *delta, const float *x,
                                                         const float *x_norm, const float *mean,
                                                         const float *var, const float *scale,
                                                         float *bias_grad, float *scale_grad,
                                                         float *mean_delta, float *var_delta,
                                                         float eps, int N, int C, int spatial)
{
    for (int c = blockIdx.x; c < C; c += gridDim.x) {
        const float m = mean[c], s = scale[c];
        double sd = 0.0, sdn = 0.0, sds = 0.0, sdc = 0.0;
        for (int b = 0; b < N; ++b) {
            const long long o = ((long long)b * C + c) * spatial;
            for (int i = threadIdx.x; i < spatial; i += blockDim.x) {
                const float d = delta[o + i];
                const float ds = d * s;
                sd += d;
                sdn += (double)(d * x_norm[o + i]);
                sds += ds;
                sdc += (double)(ds * (x[o + i] - m));
            }
        }
        sd = pdn_block_sum(sd);
        sdn = pdn_block_sum(sdn);
        sds = pdn_block_sum(sds);
        sdc = pdn_block_sum(sdc);
        if (threadIdx.x == 0) {
            const double veps = (double)(var[c] + eps);
            bias_grad[c] += (float)sd;
            scale_grad[c] += (float)sdn;
            mean_delta[c] = (float)(sds * (-1.0 / sqrt(veps)));
            var_delta[c] = (float)(sdc * (-0.5 * pow(veps, -1.5)));
        }
    }
}

extern "C" __global__ void pdn_batchnorm_backward_delta(float *delta, const float *x,
                                                        const float *mean, const float *var,
                                                        const float *scale,
                                                        const float *mean_delta,
                                                        const float *var_delta, float eps,
                                                        int N, int C, int spatial)
{
    const float inv_count = (float)(1.0 / ((double)N * spatial));
    pdn_grid_loop((long long)N * C * spatial, [&](auto i) {
        using I = decltype(i);
        const int c = (int)((i / (I)spatial) % (I)C);
        const float ds = delta[i] * scale[c];
        delta[i] = ds / sqrtf(var[c] + eps) + var_delta[c] * 2.f * (x[i] - mean[c]) * inv_count
                   + mean_delta[c] * inv_count;
    });
}

extern "C" __global__ void pdn_backward_bias(float *bias_grad, const float *delta, int N, int C,
                                             int spatial)
{
    for (int c = blockIdx.x; c < C; c += gridDim.x) {
        const double s = channel_sum(N, C, spatial, c,
                                     [&](long long k) { return (double)delta[k]; });
        if (threadIdx.x == 0) bias_grad[c] += (float)s;
    }
}
