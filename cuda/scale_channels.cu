/* [scale_channels] and [sam]: products with another layer's output.
 *
 * scale_channels: src [N, C, spatial] (the `from` layer), scale [N, C] (scale_wh = 0: one
 * factor per channel) or [N, spatial] (scale_wh = 1: one per pixel):
 *   pdn_scale_channels(src, scale, out, N, C, spatial, scale_wh)      out = src * scale
 *   pdn_scale_channels_backward_src(delta, scale, dsrc, N, C, spatial, scale_wh)
 *       dsrc += delta * scale
 *   pdn_scale_channels_backward_scale(delta, src, dscale, N, C, spatial, scale_wh)
 *       dscale[n, c] += sum over the pixels of delta * src      (scale_wh = 0: one warp
 *       per (n, c)); dscale[n, p] += sum over the channels      (scale_wh = 1: a thread
 *       per (n, p))
 * sam: element-wise, src and x of n values:
 *   pdn_sam(src, x, out, n)                          out = src * x
 *   pdn_sam_backward(delta, src, x, dx, dsrc, n)     dx += delta * src; dsrc += delta * x
 *       (dx and dsrc may be the same buffer) */
#include "common.cuh"

extern "C" __global__ void pdn_scale_channels(const float *src, const float *scale, float *out,
                                              int N, int C, int spatial, int scale_wh)
{
    pdn_grid_loop((long long)N * C * spatial, [&](auto i) {
        using I = decltype(i);
        const I plane = i / (I)spatial;                   /* n*C + c */
        const long long si = scale_wh ? (long long)(plane / (I)C) * spatial + (long long)(i % (I)spatial)
                                      : (long long)plane;
        out[i] = src[i] * scale[si];
    });
}

extern "C" __global__ void pdn_scale_channels_backward_src(const float *delta, const float *scale,
                                                           float *dsrc, int N, int C,
                                                           int spatial, int scale_wh)
{
    pdn_grid_loop((long long)N * C * spatial, [&](auto i) {
        using I = decltype(i);
        const I plane = i / (I)spatial;
        const long long si = scale_wh ? (long long)(plane / (I)C) * spatial + (long long)(i % (I)spatial)
                                      : (long long)plane;
        dsrc[i] += delta[i] * scale[si];
    });
}

extern "C" __global__ void pdn_scale_channels_backward_scale(const float *delta, const float *src,
                                                             float *dscale, int N, int C,
                                                             int spatial, int scale_wh)
{
    if (scale_wh) {
        pdn_grid_loop((long long)N * spatial, [&](auto i) {
            using I = decltype(i);
            const long long n = (long long)(i / (I)spatial), p = (long long)(i % (I)spatial);
            const long long base = n * C * spatial + p;
            float s = 0.f;
            for (int c = 0; c < C; ++c) s += delta[base + (long long)c * spatial] *
                                             src[base + (long long)c * spatial];
            dscale[i] += s;
        });
        return;
    }
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long pl = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
         pl < (long long)N * C; pl += warps) {
        const float *d = delta + pl * spatial, *s = src + pl * spatial;
        float sum = 0.f;
        for (int i = lane; i < spatial; i += 32) sum += d[i] * s[i];
        sum = pdn_warp_sum(sum);
        if (lane == 0) dscale[pl] += sum;
    }
}

extern "C" __global__ void pdn_sam(const float *src, const float *x, float *out, int n)
{
    pdn_grid_loop((long long)n, [&](auto i) { out[i] = src[i] * x[i]; });
}

extern "C" __global__ void pdn_sam_backward(const float *delta, const float *src, const float *x,
                                            float *dx, float *dsrc, int n)
{
    pdn_grid_loop((long long)n, [&](auto i) {
        const float d = delta[i];
        const float a = d * src[i], b = d * x[i];
        dx[i] += a;
        dsrc[i] += b;
    });
}
