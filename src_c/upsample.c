#include "upsample.h"
#include <stddef.h>

void pdn_upsample(const float *in, float *out, int NC, int H, int W, int stride, float scale)
{
    const int OW = W * stride, OH = H * stride;
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW > 32768)
    for (p = 0; p < NC; ++p) {
        const float *src = in + (ptrdiff_t)p * H * W;
        float *dst = out + (ptrdiff_t)p * OH * OW;
        int y, x;
        for (y = 0; y < OH; ++y) {
            const float *s = src + (ptrdiff_t)(y / stride) * W;
            float *d = dst + (ptrdiff_t)y * OW;
            for (x = 0; x < OW; ++x) d[x] = scale * s[x / stride];
        }
    }
}

void pdn_downsample_sum(const float *in, float *out, int NC, int H, int W, int OH, int OW,
                        int stride, float scale)
{
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * H * W > 32768)
    for (p = 0; p < NC; ++p) {
        const float *src = in + (ptrdiff_t)p * H * W;
        float *dst = out + (ptrdiff_t)p * OH * OW;
        int y, x;
        for (x = 0; x < OH * OW; ++x) dst[x] = 0.f;
        for (y = 0; y < OH * stride; ++y) {
            const float *s = src + (ptrdiff_t)y * W;
            float *d = dst + (ptrdiff_t)(y / stride) * OW;
            for (x = 0; x < OW * stride; ++x) d[x / stride] += scale * s[x];
        }
    }
}
