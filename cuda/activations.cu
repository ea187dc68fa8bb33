/* Activations, forward and backward (src_c/activations.c on the GPU).
 *
 *   pdn_activate(x, n, code)                 x = f(x) in place, element-wise codes
 *   pdn_activate_copy(x, y, n, code)         y = f(x), x kept (pre-activation for backward)
 *   pdn_activate_channels(x, batch, channels, spatial, code)
 *                                            normalize_channels* per pixel across channels
 *   pdn_mish(x, n) / pdn_mish_copy(x, y, n)  Mish, one fused pass
 *   pdn_gradient(delta, y, x, n, code)       delta *= f'(.) from y, or from x for swish,
 *                                            mish and hard_mish (x unused otherwise: may be 0)
 *   pdn_gradient_channels(delta, y, batch, channels, spatial, code)
 *   pdn_mish_gradient(delta, x, n)           delta *= mish'(x), one fused pass
 *
 * Element-wise kernels: grid-stride, any grid, float4 when the pointers are 16-byte aligned.
 * Cross-channel kernels: one thread per pixel (batch * spatial of them). */
#include "activations.cuh"

#define PDN_CALL_MAP_INPLACE(F) pdn_map(x, x, n, F())
extern "C" __global__ void pdn_activate(float *x, int n, int code)
{
    PDN_ACT_SWITCH(code, PDN_CALL_MAP_INPLACE)
}

#define PDN_CALL_MAP_COPY(F) pdn_map(x, y, n, F())
extern "C" __global__ void pdn_activate_copy(const float *x, float *y, int n, int code)
{
    PDN_ACT_SWITCH(code, PDN_CALL_MAP_COPY)
}

extern "C" __global__ void pdn_mish(float *x, int n) { pdn_map(x, x, n, ActMish()); }

extern "C" __global__ void pdn_mish_copy(const float *x, float *y, int n)
{
    pdn_map(x, y, n, ActMish());
}

#define PDN_CALL_GRAD(G) pdn_map_grad(delta, y, x, n, G())
extern "C" __global__ void pdn_gradient(float *delta, const float *y, const float *x, int n,
                                        int code)
{
    if (code == PDN_REVLEAKY) {   // AB's GPU build divides by leaky's gradient
        pdn_grid_loop((long long)n, [&](auto i) { delta[i] /= y[i] > 0.f ? 1.f : .1f; });
        return;
    }
    PDN_GRAD_SWITCH(code, PDN_CALL_GRAD)
}

extern "C" __global__ void pdn_mish_gradient(float *delta, const float *x, int n)
{
    pdn_map_grad(delta, (const float *)0, x, n, GradMish());
}

/* activate_array_normalize_channels(_softmax): in place, per pixel across channels (each
 * thread reads its pixel's channel values before writing them). */
extern "C" __global__ void pdn_activate_channels(float *x, int batch, int channels, int spatial,
                                                 int code)
{
    if (code != PDN_NORM_CHAN && code != PDN_NORM_CHAN_SOFTMAX &&
        code != PDN_NORM_CHAN_SOFTMAX_MAXVAL)
        return;
    const long long wh = spatial;
    pdn_grid_loop((long long)batch * spatial, [&](auto i) {
        using I = decltype(i);
        const long long b = (long long)(i / (I)spatial), k = (long long)(i % (I)spatial);
        float *p = x + b * wh * channels + k;
        const float eps = 0.0001f;
        float sum = eps;
        int c;
        if (code == PDN_NORM_CHAN) {
            for (c = 0; c < channels; ++c) {
                const float v = p[c * wh];
                if (v > 0.f) sum += v;
            }
            for (c = 0; c < channels; ++c) {
                const float v = p[c * wh];
                p[c * wh] = v > 0.f ? v / sum : 0.f;
            }
        } else {
            float max_val = 0.f;
            if (code == PDN_NORM_CHAN_SOFTMAX_MAXVAL) {
                max_val = p[0];
                for (c = 1; c < channels; ++c) max_val = fmaxf(max_val, p[c * wh]);
            }
            for (c = 0; c < channels; ++c) sum += expf(p[c * wh] - max_val);
            for (c = 0; c < channels; ++c) p[c * wh] = expf(p[c * wh] - max_val) / sum;
        }
    });
}

/* AB's GPU gradients of normalize_channels* (element-wise): normalize_channels delta *= y
 * where y > 0; the softmax ones delta *= y (1 - y), a non-finite result 0. */
extern "C" __global__ void pdn_gradient_channels(float *delta, const float *y, int batch,
                                                 int channels, int spatial, int code)
{
    if (code != PDN_NORM_CHAN && code != PDN_NORM_CHAN_SOFTMAX &&
        code != PDN_NORM_CHAN_SOFTMAX_MAXVAL)
        return;
    const bool softmax = code != PDN_NORM_CHAN;
    pdn_grid_loop((long long)batch * channels * spatial, [&](auto i) {
        if (softmax) {
            const float d = __fmul_rn(delta[i], __fmul_rn(y[i], 1.f - y[i]));
            delta[i] = isfinite(d) ? d : 0.f;
        } else if (y[i] > 0.f) {
            delta[i] *= y[i];
        }
    });
}
