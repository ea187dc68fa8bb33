/* [softmax] (Darknet's softmax_gpu): one thread per (image, group) row.
 *
 *   pdn_softmax(x, n, batch, batch_offset, groups, group_offset, stride, temp, out)
 *       for b < batch, g < groups: the n values at x + b*batch_offset + g*group_offset,
 *       `stride` apart: out = exp(v/temp - max/temp) / sum   (same places in out)
 *   The [softmax] layer: n = inputs/groups, batch_offset = inputs, group_offset = n,
 *   stride = 1. */
#include "common.cuh"

extern "C" __global__ void pdn_softmax(const float *x, int n, int batch, int batch_offset,
                                       int groups, int group_offset, int stride, float temp,
                                       float *out)
{
    pdn_grid_loop((long long)batch * groups, [&](auto id) {
        using I = decltype(id);
        const long long b = (long long)(id / (I)groups), g = (long long)(id % (I)groups);
        const long long o = b * batch_offset + g * group_offset;
        const float *in = x + o;
        float *y = out + o;
        float largest = -PDN_FLT_MAX;
        for (int i = 0; i < n; ++i) largest = fmaxf(largest, in[(long long)i * stride]);
        float sum = 0.f;
        for (int i = 0; i < n; ++i) {
            const float e = expf(in[(long long)i * stride] / temp - largest / temp);
            sum += e;
            y[(long long)i * stride] = e;
        }
        for (int i = 0; i < n; ++i) y[(long long)i * stride] /= sum;
    });
}
