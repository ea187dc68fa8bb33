/* [upsample] (src_c/upsample.c on the GPU); x [NC, H, W].
 *
 *   pdn_upsample(x, out, NC, H, W, stride, scale, accumulate)
 *       out [NC, H*stride, W*stride]: v = scale * x[p, y/stride, x/stride];
 *       out = v, or out += v when accumulate != 0 (the backward of downsample_sum)
 *   pdn_downsample_sum(x, out, NC, H, W, OH, OW, stride, scale, accumulate)
 *       Darknet's upsample with a negative stride: out [NC, OH, OW],
 *       v = sum over dy, dx < stride of scale * x[p, oy*stride + dy, ox*stride + dx];
 *       out = v, or out += v (the backward of upsample) */
#include "common.cuh"

extern "C" __global__ void pdn_upsample(const float *x, float *out, int NC, int H, int W,
                                        int stride, float scale, int accumulate)
{
    const int OH = H * stride, OW = W * stride;
    pdn_grid_loop((long long)NC * OH * OW, [&](auto i) {
        using I = decltype(i);
        const int ox = (int)(i % (I)OW), oy = (int)((i / (I)OW) % (I)OH);
        const long long p = (long long)(i / ((I)OW * (I)OH));
        const float v = scale * x[(p * H + oy / stride) * W + ox / stride];
        out[i] = accumulate ? out[i] + v : v;
    });
}

extern "C" __global__ void pdn_downsample_sum(const float *x, float *out, int NC, int H, int W,
                                              int OH, int OW, int stride, float scale,
                                              int accumulate)
{
    pdn_grid_loop((long long)NC * OH * OW, [&](auto i) {
        using I = decltype(i);
        const int ox = (int)(i % (I)OW), oy = (int)((i / (I)OW) % (I)OH);
        const long long p = (long long)(i / ((I)OW * (I)OH));
        const float *in = x + (p * H + (long long)oy * stride) * W + (long long)ox * stride;
        float v = 0.f;
        for (int dy = 0; dy < stride; ++dy)
            for (int dx = 0; dx < stride; ++dx) v += scale * in[(long long)dy * W + dx];
        out[i] = accumulate ? out[i] + v : v;
    });
}
