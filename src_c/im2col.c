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
