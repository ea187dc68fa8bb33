#include "pool.h"
#include <stddef.h>
#include <float.h>

void pdn_maxpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                 int size, int sy, int sx, int pad)
{
    const int off = -pad / 2;
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW * size * size > 32768)
    for (p = 0; p < NC; ++p) {
        const float *in = x + (ptrdiff_t)p * H * W;
        float *o = out + (ptrdiff_t)p * OH * OW;
        int i, j, n, m;
        for (i = 0; i < OH; ++i) {
            const int y0 = off + i * sy;
            const int ny0 = y0 < 0 ? -y0 : 0;
            const int ny1 = (H - y0) < size ? (H - y0) : size;
            for (j = 0; j < OW; ++j) {
                const int x0 = off + j * sx;
                const int mx0 = x0 < 0 ? -x0 : 0;
                const int mx1 = (W - x0) < size ? (W - x0) : size;
                float max = -FLT_MAX;
                for (n = ny0; n < ny1; ++n) {
                    const float *row = in + (ptrdiff_t)(y0 + n) * W + x0;
                    for (m = mx0; m < mx1; ++m) {
                        const float val = row[m];
                        max = (val > max) ? val : max;
                    }
                }
                o[(ptrdiff_t)i * OW + j] = max;
            }
        }
    }
}

void pdn_local_avgpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                       int size, int sy, int sx, int pad)
{
    const int off = -pad / 2;
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW * size * size > 32768)
    for (p = 0; p < NC; ++p) {
        const float *in = x + (ptrdiff_t)p * H * W;
        float *o = out + (ptrdiff_t)p * OH * OW;
        int i, j, n, m;
        for (i = 0; i < OH; ++i) {
            const int y0 = off + i * sy;
            const int ny0 = y0 < 0 ? -y0 : 0;
            const int ny1 = (H - y0) < size ? (H - y0) : size;
            for (j = 0; j < OW; ++j) {
                const int x0 = off + j * sx;
                const int mx0 = x0 < 0 ? -x0 : 0;
                const int mx1 = (W - x0) < size ? (W - x0) : size;
                float avg = 0;
                int counter = 0;
                for (n = ny0; n < ny1; ++n) {
                    const float *row = in + (ptrdiff_t)(y0 + n) * W + x0;
                    for (m = mx0; m < mx1; ++m) {
                        avg += row[m];
                        ++counter;
                    }
                }
                o[(ptrdiff_t)i * OW + j] = counter ? avg / counter : 0.f;
            }
        }
    }
}

void pdn_global_avgpool(const float *x, float *out, int NC, long spatial)
{
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * spatial > 32768)
    for (p = 0; p < NC; ++p) {
        const float *in = x + (ptrdiff_t)p * spatial;
        float s = 0;
        long i;
        for (i = 0; i < spatial; ++i) s += in[i];
        out[p] = s / spatial;
    }
}
