#include "batchnorm.h"
#include <math.h>

void pdn_add_bias(float *x, const float *b, int N, int C, ptrdiff_t spatial)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    ptrdiff_t p;
    #pragma omp parallel for schedule(static) if(planes * spatial > 32768)
    for (p = 0; p < planes; ++p) {
        float *v = x + p * spatial;
        const float bb = b[p % C];
        ptrdiff_t i;
        for (i = 0; i < spatial; ++i) v[i] += bb;
    }
}

void pdn_batchnorm_inference(float *x, const float *scale, const float *mean,
                             const float *var, const float *bias, float eps,
                             int N, int C, ptrdiff_t spatial)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    ptrdiff_t p;
    #pragma omp parallel for schedule(static) if(planes * spatial > 32768)
    for (p = 0; p < planes; ++p) {
        const int c = (int)(p % C);
        float *v = x + p * spatial;
        const float m = mean[c], s = scale[c], b = bias[c];
        const double sd = sqrt((double)(var[c] + eps));
        ptrdiff_t i;
        for (i = 0; i < spatial; ++i) {
            float t = (float)((v[i] - m) / sd);
            t *= s;
            v[i] = t + b;
        }
    }
}
