#include "batchnorm.h"
#include "activations.h"
#include <math.h>

#include "wide.h"

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

/* One channel plane of the inference batch norm. Darknet divides the float difference by the
 * double root; the product with the double reciprocal rounds to the same float (checked on
 * 1e8 random values: no difference) and vectorises. */
PDN_WIDE512   /* as pdn_activate_span */
static void bn_plane(float *v, ptrdiff_t n, const float *scale, const float *mean,
                     const float *var, const float *bias, float eps, int c)
{
    const float m = mean[c], s = scale[c], b = bias[c];
    const double inv_sd = 1.0 / sqrt((double)(var[c] + eps));
    ptrdiff_t i;
    for (i = 0; i < n; ++i) {
        float t = (float)((double)(v[i] - m) * inv_sd);
        t *= s;
        v[i] = t + b;
    }
}

void pdn_batchnorm_inference(float *x, const float *scale, const float *mean,
                             const float *var, const float *bias, float eps,
                             int N, int C, ptrdiff_t spatial)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    ptrdiff_t p;
    #pragma omp parallel for schedule(static) if(planes * spatial > 32768)
    for (p = 0; p < planes; ++p) bn_plane(x + p * spatial, spatial, scale, mean, var, bias,
                                          eps, (int)(p % C));
}

int pdn_bias_bn_activate(float *x, const float *scale, const float *mean, const float *var,
                         const float *bias, float eps, int N, int C, ptrdiff_t spatial,
                         int code)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    ptrdiff_t p;
    if (code < 0 || code >= PDN_NORM_CHAN) return -1;
    #pragma omp parallel for schedule(static) if(planes * spatial > 32768)
    for (p = 0; p < planes; ++p) {
        float *v = x + p * spatial;
        const int c = (int)(p % C);
        if (scale) {
            bn_plane(v, spatial, scale, mean, var, bias, eps, c);
        } else {
            const float b = bias[c];
            ptrdiff_t i;
            for (i = 0; i < spatial; ++i) v[i] += b;
        }
        pdn_activate_span(v, spatial, code);   /* while the plane is in cache */
    }
    return 0;
}

/* mean and variance of the channels first .. first+nc-1 (nc <= PDN_BN_BLOCK), each one a
 * sequential float chain in Darknet's order; the channels' chains are interleaved so that
 * their latencies overlap (the variance's float -> double -> float step is slow; eight
 * chains hide it where four did not). */
#define PDN_BN_BLOCK 8
static void bn_stats(const float *x, int N, ptrdiff_t spatial, ptrdiff_t plane_step,
                     ptrdiff_t first, int nc, float mean_scale, float var_scale,
                     float *mean, float *var)
{
    float m[PDN_BN_BLOCK], v[PDN_BN_BLOCK];
    int b, k;
    ptrdiff_t i;
    for (k = 0; k < PDN_BN_BLOCK; ++k) m[k] = v[k] = 0.f;
    if (nc == PDN_BN_BLOCK) {
        for (b = 0; b < N; ++b) {
            const float *p = x + first + b * plane_step;
            for (i = 0; i < spatial; ++i)
                for (k = 0; k < PDN_BN_BLOCK; ++k) m[k] += p[i + k * spatial];
        }
    } else {
        for (k = 0; k < nc; ++k)
            for (b = 0; b < N; ++b) {
                const float *p = x + first + k * spatial + b * plane_step;
                for (i = 0; i < spatial; ++i) m[k] += p[i];
            }
    }
    for (k = 0; k < nc; ++k) m[k] *= mean_scale;
    /* float += pow(d, 2): d*d is exact in double, the sum is rounded to float each step */
#define PDN_VAR_STEP(K, P) do { const float d = (P) - m[K];                       \
        v[K] = (float)((double)v[K] + (double)d * (double)d); } while (0)
    if (nc == PDN_BN_BLOCK) {
        for (b = 0; b < N; ++b) {
            const float *p = x + first + b * plane_step;
            for (i = 0; i < spatial; ++i)
                for (k = 0; k < PDN_BN_BLOCK; ++k) PDN_VAR_STEP(k, p[i + k * spatial]);
        }
    } else {
        for (k = 0; k < nc; ++k)
            for (b = 0; b < N; ++b) {
                const float *p = x + first + k * spatial + b * plane_step;
                for (i = 0; i < spatial; ++i) PDN_VAR_STEP(k, p[i]);
            }
    }
#undef PDN_VAR_STEP
    for (k = 0; k < nc; ++k) {
        mean[k] = m[k];
        var[k] = v[k] * var_scale;
    }
}

/* Darknet's training batch norm (mean_cpu, variance_cpu, the rolling update, copy into l.x,
 * normalize_cpu, copy into l.x_norm, scale_bias, add_bias), a few channels per task. Every
 * per-channel sum runs sequentially in float, batch outer and spatial inner, like Darknet's,
 * and every expression keeps Darknet's float/double mix, so the statistics are Darknet's to
 * the bit (given the same input) whatever the thread count. */
PDN_WIDE void pdn_batchnorm_train(float *x, const float *scale, const float *bias, float *rolling_mean,
                         float *rolling_var, float *mean, float *var, float *x_saved,
                         float *x_norm, float keep, float one_minus_keep, int N, int C,
                         ptrdiff_t spatial)
{
    const ptrdiff_t count = (ptrdiff_t)N * spatial, plane_step = (ptrdiff_t)C * spatial;
    const float mean_scale = (float)(1. / (double)count);            /* 1./(batch*spatial) */
    const float var_scale = (float)(1. / (double)(count > 1 ? count - 1 : 1));
    const int blocks = (C + PDN_BN_BLOCK - 1) / PDN_BN_BLOCK;
    int blk;
    #pragma omp parallel for schedule(static) if(count * C > 32768)
    for (blk = 0; blk < blocks; ++blk) {
        const int c0 = blk * PDN_BN_BLOCK;
        const int nc = C - c0 < PDN_BN_BLOCK ? C - c0 : PDN_BN_BLOCK;
        int c;
        bn_stats(x, N, spatial, plane_step, (ptrdiff_t)c0 * spatial, nc, mean_scale,
                 var_scale, mean + c0, var + c0);
        for (c = c0; c < c0 + nc; ++c) {
            const ptrdiff_t first = (ptrdiff_t)c * spatial;
            const float m = mean[c], v = var[c], s = scale[c], bb = bias[c];
            const double sd = sqrt((double)(v + .00001f));
            int b;
            ptrdiff_t i;
            rolling_mean[c] *= keep;                               /* scal_cpu, axpy_cpu */
            rolling_mean[c] += one_minus_keep * m;
            rolling_var[c] *= keep;
            rolling_var[c] += one_minus_keep * v;
            for (b = 0; b < N; ++b) {
                const ptrdiff_t o = first + b * plane_step;
                float *p = x + o, *xs = x_saved + o, *xn = x_norm + o;
                for (i = 0; i < spatial; ++i) {
                    const float xv = p[i];
                    float t = (float)((xv - m) / sd);
                    xs[i] = xv;
                    xn[i] = t;
                    t *= s;
                    p[i] = t + bb;
                }
            }
        }
    }
}

/* Darknet's batch-norm backward with the -gpusem fixes: backward_bias (before any transform),
 * backward_scale_cpu, scale_bias on the delta, mean_delta_cpu, variance_delta_cpu and
 * normalize_delta_cpu with the eps inside the square root. The five per-channel sums are
 * independent sequential float chains fused into one read of the channel; their orders and
 * Darknet's float/double expressions are kept. */
PDN_WIDE void pdn_batchnorm_backward(float *delta, const float *x, const float *x_norm,
                            const float *mean, const float *var, const float *scale,
                            float *bias_grad, float *scale_grad, int N, int C,
                            ptrdiff_t spatial)
{
    const ptrdiff_t plane_step = (ptrdiff_t)C * spatial;
    const int count = (int)((ptrdiff_t)N * spatial);      /* Darknet's int spatial*batch */
    int c;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)N * spatial * C > 32768)
    for (c = 0; c < C; ++c) {
        const ptrdiff_t first = (ptrdiff_t)c * spatial;
        const float m = mean[c], s = scale[c];
        const double veps = (double)(var[c] + .00001f);
        const double sd = sqrt(veps);
        float bg = bias_grad[c], sg = 0.f, md = 0.f, vd = 0.f, md_term;
        double vd2;
        int b;
        ptrdiff_t i;
        for (b = 0; b < N; ++b) {
            const ptrdiff_t o = first + b * plane_step;
            const float *d = delta + o, *xn = x_norm + o, *xv = x + o;
            float bsum = 0.f;                                      /* sum_array */
            for (i = 0; i < spatial; ++i) {
                const float di = d[i];
                const float ds = di * s;                           /* scale_bias */
                bsum += di;
                sg += di * xn[i];
                md += ds;
                vd += ds * (xv[i] - m);
            }
            bg += bsum;
        }
        bias_grad[c] = bg;
        scale_grad[c] += sg;
        md = (float)((double)md * (-1. / sd));
        vd = (float)((double)vd * (-.5 * pow(veps, (double)(float)(-3. / 2.))));
        vd2 = (double)vd * 2.;
        md_term = md / (float)count;                               /* float / int */
        for (b = 0; b < N; ++b) {
            const ptrdiff_t o = first + b * plane_step;
            float *d = delta + o;
            const float *xv = x + o;
            for (i = 0; i < spatial; ++i) {
                const float ds = d[i] * s;
                d[i] = (float)((double)ds * 1. / sd + vd2 * (double)(xv[i] - m) / count
                               + (double)md_term);
            }
        }
    }
}
