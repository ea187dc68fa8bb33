/* Darknet's SGD update, fused (pydarknet/train/sgd.py on the GPU), for one parameter tensor
 * w with accumulated delta g and momentum buffer u, B = the whole batch:
 *   u += g;  u += -decay*B * w (decayed != 0: weights only);  w += lr/B * u;  u *= momentum
 *
 *   pdn_sgd_update(w, u, g, n, step, neg_decay_b, momentum, decayed, zero_grad)
 *       step = lr/B and neg_decay_b = -decay*B as float32 (computed by the caller, as
 *       sgd.py does); zero_grad != 0 also sets g = 0 (ready for the next iteration).
 * Every product and sum is rounded on its own (no FMA), like numpy's float32 steps. */
#include "common.cuh"

extern "C" __global__ void pdn_sgd_update(float *w, float *u, float *g, int n, float step,
                                          float neg_decay_b, float momentum, int decayed,
                                          int zero_grad)
{
    pdn_grid_loop((long long)n, [&](auto i) {
        float uu = __fadd_rn(u[i], g[i]);
        float ww = w[i];
        if (decayed) uu = __fadd_rn(uu, __fmul_rn(neg_decay_b, ww));
        ww = __fadd_rn(ww, __fmul_rn(step, uu));
        w[i] = ww;
        u[i] = __fmul_rn(uu, momentum);
        if (zero_grad) g[i] = 0.f;
    });
}
