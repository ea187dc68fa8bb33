/* Pooling (src_c/pool.c on the GPU). x [NC, H, W] -> out [NC, OH, OW] (NC = batch*channels).
 * Darknet's window of output (oy, ox): rows oy*sy + off + [0, size), columns ox*sx + off +
 * [0, size), off = -(pad/2) (C division); only the cells inside the image count.
 *
 *   pdn_maxpool(x, out, NC, H, W, OH, OW, size, sy, sx, pad)          max (-FLT_MAX if none)
 *   pdn_maxpool_train(x, out, indexes, NC, H, W, OH, OW, size, sy, sx, pad)
 *       also indexes[o] = flat index into x (whole batch) of the first maximum, -1 if none
 *   pdn_maxpool_backward(delta, indexes, dx, NC, H, W, OH, OW, size, sy, sx, pad)
 *       dx[k] += sum of delta[o] over the outputs o of k's plane whose window covers k and
 *       whose indexes[o] == k (a gather: deterministic, no atomics; indexes into other
 *       planes, which Darknet's maxpool never writes, are not followed)
 *   pdn_local_avgpool(x, out, ...)            mean over the window's in-image cells (0 if none)
 *   pdn_local_avgpool_backward(delta, dx, ...)   dx += delta / count, gathered
 *   pdn_global_avgpool(x, out, NC, spatial)      out[p] = mean of plane p (one warp per plane)
 *   pdn_global_avgpool_backward(delta, dx, NC, spatial)   dx[p, i] += delta[p] / spatial
 */
#include "common.cuh"

/* the outputs along one axis whose windows cover input coordinate v: [*lo, *hi] */
__device__ __forceinline__ void covering(int v, int off, int size, int stride, int out_len,
                                         int *lo, int *hi)
{
    const int a = v - off;                         /* >= 0 since off <= 0 */
    const int t = a - size + 1;
    *lo = t <= 0 ? 0 : (t + stride - 1) / stride;
    *hi = a / stride;
    if (*hi > out_len - 1) *hi = out_len - 1;
}

template <bool TRAIN>
__device__ __forceinline__ void maxpool_body(const float *x, float *out, int *indexes, int NC,
                                             int H, int W, int OH, int OW, int size, int sy,
                                             int sx, int pad)
{
    const int off = -(pad / 2);
    pdn_grid_loop((long long)NC * OH * OW, [&](auto i) {
        using I = decltype(i);
        const int ox = (int)(i % (I)OW), oy = (int)((i / (I)OW) % (I)OH);
        const long long p = (long long)(i / ((I)OW * (I)OH));
        const long long base = p * H * W;
        const int y0 = off + oy * sy, x0 = off + ox * sx;
        float best = -PDN_FLT_MAX;
        long long best_i = -1;
        for (int n = 0; n < size; ++n) {
            const int y = y0 + n;
            if (y < 0 || y >= H) continue;
            for (int m = 0; m < size; ++m) {
                const int xx = x0 + m;
                if (xx < 0 || xx >= W) continue;
                const long long k = base + (long long)y * W + xx;
                const float v = x[k];
                if (v > best) {                    /* strict: the first maximum wins */
                    best = v;
                    best_i = k;
                }
            }
        }
        out[i] = best;
        if (TRAIN) indexes[i] = (int)best_i;
    });
}

extern "C" __global__ void pdn_maxpool(const float *x, float *out, int NC, int H, int W, int OH,
                                       int OW, int size, int sy, int sx, int pad)
{
    maxpool_body<false>(x, out, (int *)0, NC, H, W, OH, OW, size, sy, sx, pad);
}

extern "C" __global__ void pdn_maxpool_train(const float *x, float *out, int *indexes, int NC,
                                             int H, int W, int OH, int OW, int size, int sy,
                                             int sx, int pad)
{
    maxpool_body<true>(x, out, indexes, NC, H, W, OH, OW, size, sy, sx, pad);
}

extern "C" __global__ void pdn_maxpool_backward(const float *delta, const int *indexes,
                                                float *dx, int NC, int H, int W, int OH, int OW,
                                                int size, int sy, int sx, int pad)
{
    const int off = -(pad / 2);
    pdn_grid_loop((long long)NC * H * W, [&](auto i) {
        using I = decltype(i);
        const int xx = (int)(i % (I)W), y = (int)((i / (I)W) % (I)H);
        const long long p = (long long)(i / ((I)W * (I)H));
        int oy0, oy1, ox0, ox1;
        covering(y, off, size, sy, OH, &oy0, &oy1);
        covering(xx, off, size, sx, OW, &ox0, &ox1);
        const int k = (int)i;
        const long long obase = p * OH * OW;
        float sum = 0.f;
        for (int oy = oy0; oy <= oy1; ++oy)
            for (int ox = ox0; ox <= ox1; ++ox) {
                const long long o = obase + (long long)oy * OW + ox;
                if (indexes[o] == k) sum += delta[o];
            }
        dx[i] += sum;
    });
}

/* number of in-image cells of the window starting at (y0, x0) */
__device__ __forceinline__ int window_count(int y0, int x0, int size, int H, int W)
{
    const int ny0 = y0 < 0 ? -y0 : 0, ny1 = (H - y0) < size ? (H - y0) : size;
    const int mx0 = x0 < 0 ? -x0 : 0, mx1 = (W - x0) < size ? (W - x0) : size;
    return (ny1 > ny0 ? ny1 - ny0 : 0) * (mx1 > mx0 ? mx1 - mx0 : 0);
}

extern "C" __global__ void pdn_local_avgpool(const float *x, float *out, int NC, int H, int W,
                                             int OH, int OW, int size, int sy, int sx, int pad)
{
    const int off = -(pad / 2);
    pdn_grid_loop((long long)NC * OH * OW, [&](auto i) {
        using I = decltype(i);
        const int ox = (int)(i % (I)OW), oy = (int)((i / (I)OW) % (I)OH);
        const long long p = (long long)(i / ((I)OW * (I)OH));
        const float *in = x + p * H * W;
        const int y0 = off + oy * sy, x0 = off + ox * sx;
        float sum = 0.f;
        int count = 0;
        for (int n = 0; n < size; ++n) {
            const int y = y0 + n;
            if (y < 0 || y >= H) continue;
            for (int m = 0; m < size; ++m) {
                const int xx = x0 + m;
                if (xx < 0 || xx >= W) continue;
                sum += in[(long long)y * W + xx];
                ++count;
            }
        }
        out[i] = count ? sum / (float)count : 0.f;
    });
}

extern "C" __global__ void pdn_local_avgpool_backward(const float *delta, float *dx, int NC,
                                                      int H, int W, int OH, int OW, int size,
                                                      int sy, int sx, int pad)
{
    const int off = -(pad / 2);
    pdn_grid_loop((long long)NC * H * W, [&](auto i) {
        using I = decltype(i);
        const int xx = (int)(i % (I)W), y = (int)((i / (I)W) % (I)H);
        const long long p = (long long)(i / ((I)W * (I)H));
        int oy0, oy1, ox0, ox1;
        covering(y, off, size, sy, OH, &oy0, &oy1);
        covering(xx, off, size, sx, OW, &ox0, &ox1);
        const float *d = delta + p * OH * OW;
        float sum = 0.f;
        for (int oy = oy0; oy <= oy1; ++oy)
            for (int ox = ox0; ox <= ox1; ++ox) {
                const int count = window_count(off + oy * sy, off + ox * sx, size, H, W);
                sum += d[(long long)oy * OW + ox] / (float)count;   /* count >= 1: covers i */
            }
        dx[i] += sum;
    });
}

/* one warp per plane, grid-stride over the planes */
extern "C" __global__ void pdn_global_avgpool(const float *x, float *out, int NC, int spatial)
{
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long p = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); p < NC;
         p += warps) {
        const float *in = x + p * spatial;
        double s = 0.0;
        for (int i = lane; i < spatial; i += 32) s += in[i];
        s = pdn_warp_sum(s);
        if (lane == 0) out[p] = (float)(s / spatial);
    }
}

extern "C" __global__ void pdn_global_avgpool_backward(const float *delta, float *dx, int NC,
                                                       int spatial)
{
    pdn_grid_loop((long long)NC * spatial, [&](auto i) {
        using I = decltype(i);
        dx[i] += delta[i / (I)spatial] / (float)spatial;
    });
}
