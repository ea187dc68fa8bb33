#include "im2col.h"
#include <stddef.h>
#include <string.h>

void pdn_im2col(const float *im, int C, int H, int W, int kh, int kw,
                int sy, int sx, int py, int px, int dil, int OW, int oy0, int oy1,
                float *col)
{
    const int rows = C * kh * kw;
    const ptrdiff_t ohw = (ptrdiff_t)(oy1 - oy0) * OW;
    int r;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)rows * ohw > 32768)
    for (r = 0; r < rows; ++r) {
        const int kx = r % kw, ky = (r / kw) % kh, c = r / (kw * kh);
        const float *plane = im + (ptrdiff_t)c * H * W;
        float *dst = col + (ptrdiff_t)r * ohw;
        const int xoff = kx * dil - px;
        const int yoff = ky * dil - py;
        /* output columns [lo, hi) read inside the image: 0 <= ox*sx + xoff < W */
        int lo = xoff < 0 ? (-xoff + sx - 1) / sx : 0;
        int hi = (W - 1 - xoff) < 0 ? 0 : (W - 1 - xoff) / sx + 1;
        int oy;
        if (hi > OW) hi = OW;
        if (lo > hi) lo = hi;
        for (oy = oy0; oy < oy1; ++oy) {
            const int iy = oy * sy + yoff;
            float *d = dst + (ptrdiff_t)(oy - oy0) * OW;
            int ox;
            if (iy < 0 || iy >= H) {
                memset(d, 0, (size_t)OW * sizeof(float));
                continue;
            }
            {
                const float *row = plane + (ptrdiff_t)iy * W;
                for (ox = 0; ox < lo; ++ox) d[ox] = 0.f;
                if (sx == 1) {
                    if (hi > lo) memcpy(d + lo, row + lo + xoff, (size_t)(hi - lo) * sizeof(float));
                } else {
                    for (ox = lo; ox < hi; ++ox) d[ox] = row[ox * sx + xoff];
                }
                for (ox = hi; ox < OW; ++ox) d[ox] = 0.f;
            }
        }
    }
}

void pdn_col2im_add(const float *col, int C, int H, int W, int kh, int kw,
                    int sy, int sx, int py, int px, int dil, int OW, int oy0, int oy1,
                    float *im)
{
    const ptrdiff_t ohw = (ptrdiff_t)(oy1 - oy0) * OW;
    int c;
    /* one channel per task: every row of a channel adds into that channel's plane only, so
     * the planes are disjoint between threads and each plane's sums run in a fixed order */
    #pragma omp parallel for schedule(static) if((ptrdiff_t)C * kh * kw * ohw > 32768)
    for (c = 0; c < C; ++c) {
        float *plane = im + (ptrdiff_t)c * H * W;
        int ky, kx;
        for (ky = 0; ky < kh; ++ky) {
            const int yoff = ky * dil - py;
            for (kx = 0; kx < kw; ++kx) {
                const int xoff = kx * dil - px;
                const float *src = col + ((ptrdiff_t)(c * kh + ky) * kw + kx) * ohw;
                /* output columns [lo, hi) that land inside the image (as in pdn_im2col) */
                int lo = xoff < 0 ? (-xoff + sx - 1) / sx : 0;
                int hi = (W - 1 - xoff) < 0 ? 0 : (W - 1 - xoff) / sx + 1;
                int oy;
                if (hi > OW) hi = OW;
                if (lo > hi) lo = hi;
                for (oy = oy0; oy < oy1; ++oy) {
                    const int iy = oy * sy + yoff;
                    const float *s = src + (ptrdiff_t)(oy - oy0) * OW;
                    int ox;
                    if (iy < 0 || iy >= H) continue;
                    {
                        float *row = plane + (ptrdiff_t)iy * W;
                        if (sx == 1) {
                            for (ox = lo; ox < hi; ++ox) row[ox + xoff] += s[ox];
                        } else {
                            for (ox = lo; ox < hi; ++ox) row[ox * sx + xoff] += s[ox];
                        }
                    }
                }
            }
        }
    }
}
