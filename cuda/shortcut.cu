/* [shortcut]: add another layer's output, optionally weighted (Darknet's shortcut with
 * weights_type none / per_feature / per_channel; the weight normalisation is the caller's).
 *
 *   pdn_shortcut_add(out, add, weights, batch, out_stride, add_stride, m, spatial,
 *                    weight_mode, accumulate)
 *       for each image b and i < m (Darknet adds the overlapping prefix when the sizes
 *       differ): v = add[b*add_stride + i] * w, w = 1 (weight_mode 0, no multiply),
 *       weights[0] (1: per feature) or weights[i / spatial] (2: per channel);
 *       out[b*out_stride + i] = v, or += v when accumulate != 0.
 *       (weights is not read in mode 0: pass any pointer.)
 *   The backward is the same kernel: prev_delta += delta (* w). */
#include "common.cuh"

extern "C" __global__ void pdn_shortcut_add(float *out, const float *add, const float *weights,
                                            int batch, int out_stride, int add_stride, int m,
                                            int spatial, int weight_mode, int accumulate)
{
    pdn_grid_loop((long long)batch * m, [&](auto i) {
        using I = decltype(i);
        const I b = i / (I)m, k = i % (I)m;
        float v = add[(long long)b * add_stride + k];
        if (weight_mode == 1) v *= weights[0];
        else if (weight_mode == 2) v *= weights[k / (I)spatial];
        float *o = out + (long long)b * out_stride + k;
        *o = accumulate ? *o + v : v;
    });
}
