#include "activations.h"
#include "wide.h"
#include <math.h>
#include <float.h>

#define PDN_PAR_MIN 16384 /* below this many elements, stay single-threaded */

static inline float act_logistic(float x) { return 1.f / (1.f + expf(-x)); }
static inline float act_loggy(float x) { return 2.f / (1.f + expf(-x)) - 1; }
static inline float act_relu(float x) { return x * (x > 0); }
static inline float act_relu6(float x)
{
    float y = x > 0 ? x : 0;
    return y < 6 ? y : 6;
}
/* Darknet writes elu/selu as (x>=0)*x + (x<0)*(expf(x)-1); the branch form gives the
 * same floats except that it does not turn x > 88 into 0*inf = NaN. */
static inline float act_elu(float x) { return x >= 0 ? x : expf(x) - 1; }
static inline float act_selu(float x)
{
    return x >= 0 ? 1.0507f * x : 1.0507f * 1.6732f * (expf(x) - 1);
}
static inline float act_relie(float x) { return (x > 0) ? x : .01f * x; }
static inline float act_ramp(float x) { return x * (x > 0) + .1f * x; }
static inline float act_leaky(float x) { return (x > 0) ? x : .1f * x; }
static inline float act_tanh(float x) { return (2 / (1 + expf(-2 * x)) - 1); }
static inline float act_gelu(float x)
{
    /* same mixed float/double expression as Darknet */
    return (float)(0.5 * x * (1 + tanhf(0.797885 * x + 0.035677 * powf(x, 3))));
}
static inline float act_plse(float x)
{
    if (x < -4) return .01f * (x + 4);
    if (x > 4) return .01f * (x - 4) + 1;
    return .125f * x + .5f;
}
static inline float act_stair(float x)
{
    int n;
    /* (int) of a float outside int's range (or NaN) is undefined; x86, where Darknet's
     * values come from, gives INT_MIN there, which is even: the same branch as below. */
    if (!(fabsf(x) < 2147483648.f)) return floorf(x / 2.f);
    n = (int)floorf(x);
    if (n % 2 == 0) return floorf(x / 2.f);
    return (x - n) + floorf(x / 2.f);
}
static inline float act_hardtan(float x)
{
    if (x < -1) return -1;
    if (x > 1) return 1;
    return x;
}
static inline float act_lhtan(float x)
{
    if (x < 0) return .001f * x;
    if (x > 1) return .001f * (x - 1) + 1;
    return x;
}
static inline float act_softplus(float x, float threshold)
{
    if (x > threshold) return x;
    if (x < -threshold) return expf(x);
    return logf(expf(x) + 1);
}
/* exp(x) for x in [-87, 88] without a library call, so that loops over it vectorise:
 * 2^k * exp(r) with k = round(x / ln 2), |r| <= ln(2)/2, and Cephes' degree-6 polynomial
 * (within 2 ulp of expf). */
static inline float pdn_expf(float x)
{
    /* NaN becomes -87 here (no undefined (int)NaN below); the callers' results are NaN
     * for a NaN x all the same, since they multiply by x */
    x = x > -87.f ? (x < 88.f ? x : 88.f) : -87.f;
    float t = x * 1.44269504088896341f;
    float kf = (t + 12582912.f) - 12582912.f;   /* round to nearest: 1.5 * 2^23 trick */
    int k = (int)kf;
    float r = x - kf * 0.693359375f + kf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    union { int i; float f; } scale;
    scale.i = (k + 127) << 23;
    return p * scale.f;
}
/* Mish = x * tanh(softplus(x)), softplus threshold 20. With e = exp(x):
 * tanh(log(1 + e)) = n / (n + 2) where n = e * (e + 2); one exp instead of exp, log and tanh.
 * Above the threshold Darknet's value is x * tanh(x) == x in float. */
static inline float act_mish(float x)
{
    float e = pdn_expf(x);
    float n = e * (e + 2.f);
    float m = x * n / (n + 2.f);
    return x > 20.f ? x : m;
}
static inline float act_swish(float x) { return x * act_logistic(x); }
static inline float act_hard_mish(float x)
{
    if (x > 0) return x;
    if (x > -2) return x * x / 2 + x;
    return 0;
}

#define PDN_MAP(FN)                                                         \
    do {                                                                    \
        ptrdiff_t i;                                                        \
        for (i = 0; i < n; ++i) x[i] = FN(x[i]);                            \
    } while (0)

/* Chunks of this many floats are what one thread activates at a time. */
#define PDN_ACT_CHUNK 16384

int pdn_activate(float *x, ptrdiff_t n, int code)
{
    const ptrdiff_t chunks = (n + PDN_ACT_CHUNK - 1) / PDN_ACT_CHUNK;
    ptrdiff_t k;
    if (code < 0 || code >= PDN_NORM_CHAN) return -1;
    if (code == PDN_LINEAR || n <= 0) return 0;
    #pragma omp parallel for schedule(static) if(n > PDN_ACT_CHUNK)
    for (k = 0; k < chunks; ++k) {
        const ptrdiff_t start = k * PDN_ACT_CHUNK;
        const ptrdiff_t len = n - start < PDN_ACT_CHUNK ? n - start : PDN_ACT_CHUNK;
        pdn_activate_span(x + start, len, code);
    }
    return 0;
}

PDN_WIDE ptrdiff_t pdn_count_nonfinite(const float *x, ptrdiff_t n)
{
    const unsigned *u = (const unsigned *)x;
    ptrdiff_t i, bad = 0;
    #pragma omp parallel for simd reduction(+:bad) schedule(static) if(n > 65536)
    for (i = 0; i < n; ++i) bad += (u[i] & 0x7f800000u) == 0x7f800000u;
    return bad;
}

/* Built for AVX-512 and AVX2 too, picked at load time (the extension itself targets plain
 * x86-64): the element-wise forms above vectorise, 4x wider on AVX-512. Each element is the
 * same IEEE operations in every version (no FMA contraction), so every result is too. */
PDN_WIDE512
int pdn_activate_span(float *x, ptrdiff_t n, int code)
{
    switch (code) {
    case PDN_LINEAR: break;
    case PDN_LOGISTIC: PDN_MAP(act_logistic); break;
    case PDN_RELU: PDN_MAP(act_relu); break;
    case PDN_RELIE: PDN_MAP(act_relie); break;
    case PDN_RAMP: PDN_MAP(act_ramp); break;
    case PDN_TANH: PDN_MAP(act_tanh); break;
    case PDN_PLSE: PDN_MAP(act_plse); break;
    case PDN_REVLEAKY:
    case PDN_LEAKY: PDN_MAP(act_leaky); break;
    case PDN_ELU: PDN_MAP(act_elu); break;
    case PDN_LOGGY: PDN_MAP(act_loggy); break;
    case PDN_STAIR: PDN_MAP(act_stair); break;
    case PDN_HARDTAN: PDN_MAP(act_hardtan); break;
    case PDN_LHTAN: PDN_MAP(act_lhtan); break;
    case PDN_SELU: PDN_MAP(act_selu); break;
    case PDN_GELU: PDN_MAP(act_gelu); break;
    case PDN_SWISH: PDN_MAP(act_swish); break;
    case PDN_MISH: {
        ptrdiff_t i;
#pragma omp simd
        for (i = 0; i < n; ++i) x[i] = act_mish(x[i]);
        break;
    }
    case PDN_HARD_MISH: PDN_MAP(act_hard_mish); break;
    case PDN_RELU6: PDN_MAP(act_relu6); break;
    default: return -1;
    }
    return 0;
}

/* activate_array_normalize_channels*: per pixel across channels, in place (each pixel
 * reads its own channel values before writing them, so in place is safe). */
static void norm_channels(float *x, int batch, int channels, ptrdiff_t wh)
{
    const ptrdiff_t size = (ptrdiff_t)batch * wh;
    ptrdiff_t i;
    #pragma omp parallel for schedule(static) if(size * channels > PDN_PAR_MIN)
    for (i = 0; i < size; ++i) {
        const ptrdiff_t b = i / wh, wh_i = i % wh;
        float *p = x + b * wh * channels + wh_i;
        const float eps = 0.0001f;
        float sum = eps;
        int k;
        for (k = 0; k < channels; ++k) {
            float val = p[k * wh];
            if (val > 0) sum += val;
        }
        for (k = 0; k < channels; ++k) {
            float val = p[k * wh];
            p[k * wh] = (val > 0) ? val / sum : 0;
        }
    }
}

static void norm_channels_softmax(float *x, int batch, int channels, ptrdiff_t wh, int use_max_val)
{
    const ptrdiff_t size = (ptrdiff_t)batch * wh;
    ptrdiff_t i;
    #pragma omp parallel for schedule(static) if(size * channels > PDN_PAR_MIN)
    for (i = 0; i < size; ++i) {
        const ptrdiff_t b = i / wh, wh_i = i % wh;
        float *p = x + b * wh * channels + wh_i;
        const float eps = 0.0001f;
        float sum = eps;
        float max_val = -FLT_MAX;
        int k;
        if (use_max_val) {
            for (k = 0; k < channels; ++k) {
                float val = p[k * wh];
                if (val > max_val || k == 0) max_val = val;
            }
        } else {
            max_val = 0;
        }
        for (k = 0; k < channels; ++k) sum += expf(p[k * wh] - max_val);
        for (k = 0; k < channels; ++k) p[k * wh] = expf(p[k * wh] - max_val) / sum;
    }
}

int pdn_activate_channels(float *x, int batch, int channels, ptrdiff_t spatial, int code)
{
    switch (code) {
    case PDN_NORM_CHAN: norm_channels(x, batch, channels, spatial); return 0;
    case PDN_NORM_CHAN_SOFTMAX: norm_channels_softmax(x, batch, channels, spatial, 0); return 0;
    case PDN_NORM_CHAN_SOFTMAX_MAXVAL: norm_channels_softmax(x, batch, channels, spatial, 1); return 0;
    default: return pdn_activate(x, (ptrdiff_t)batch * channels * spatial, code);
    }
}

/* ---- gradients (Darknet's *_gradient, evaluated at the activated output y) ---- */
static inline float grad_logistic(float y) { return (1 - y) * y; }
static inline float grad_loggy(float y)
{
    float t = (y + 1.f) / 2.f;
    return 2 * (1 - t) * t;
}
static inline float grad_relu(float y) { return (float)(y > 0); }
static inline float grad_relu6(float y) { return (float)(y > 0 && y < 6); }
static inline float grad_elu(float y) { return (y >= 0) + (y < 0) * (y + 1); }
static inline float grad_selu(float y) { return (y >= 0) * 1.0507f + (y < 0) * (y + 1.0507f * 1.6732f); }
static inline float grad_relie(float y) { return (y > 0) ? 1 : .01f; }
static inline float grad_ramp(float y) { return (y > 0) + .1f; }
static inline float grad_leaky(float y) { return (y > 0) ? 1 : .1f; }
static inline float grad_tanh(float y) { return 1 - y * y; }
static inline float grad_plse(float y) { return (y < 0 || y > 1) ? .01f : .125f; }
static inline float grad_stair(float y) { return floor(y) == y ? 0.f : 1.f; }
static inline float grad_hardtan(float y) { return (y > -1 && y < 1) ? 1.f : 0.f; }
static inline float grad_lhtan(float y) { return (y > 0 && y < 1) ? 1 : .001f; }
static inline float grad_gelu(float y)
{
    /* Darknet's float/double mix; sech(t) = 2 / (exp(t) + exp(-t)) in float */
    const float y3 = powf(y, 3);
    const float t = (float)(0.0356774 * y3 + 0.797885 * y);
    const float sech = 2 / (expf(t) + expf(-t));
    return (float)(0.5 * tanhf(t) + (0.0535161 * y3 + 0.398942 * y) * powf(sech, 2) + 0.5);
}
/* Mish'(x) from the pre-activation, one exp: with e = exp(x), n = e*(e+2),
 * tanh(softplus(x)) = n/(n+2), softplus'(x) = e/(1+e), 1 - tanh^2 = 4(n+1)/(n+2)^2 and
 * n + 1 = (1+e)^2, so  mish' = n/(n+2) + 4*x*e*(1+e)/(n+2)^2  (Darknet: tsp + x*(1-tsp^2)*
 * (1-exp(-sp)) with softplus threshold 20; above it the derivative is 1 in float). */
static inline float grad_mish(float x)
{
    const float e = pdn_expf(x);
    const float n = e * (e + 2.f);
    const float d = n + 2.f;
    const float g = n / d + 4.f * x * e * (1.f + e) / (d * d);
    return x > 20.f ? 1.f : g;
}
static inline float grad_hard_mish(float x)
{
    if (x > 0) return 1;
    if (x > -2) return x + 1;
    return 0;
}

#define PDN_GRAD(FN)                                                        \
    do {                                                                    \
        ptrdiff_t i;                                                        \
        _Pragma("omp parallel for schedule(static) if(n > 16384)")    \
        for (i = 0; i < n; ++i) delta[i] *= FN(y[i]);                       \
    } while (0)

static int gradient_elementwise(float *delta, const float *y, const float *x, ptrdiff_t n,
                                int code)
{
    ptrdiff_t i;
    switch (code) {
    case PDN_LINEAR: break;
    case PDN_LOGISTIC: PDN_GRAD(grad_logistic); break;
    case PDN_RELU: PDN_GRAD(grad_relu); break;
    case PDN_RELIE: PDN_GRAD(grad_relie); break;
    case PDN_RAMP: PDN_GRAD(grad_ramp); break;
    case PDN_TANH: PDN_GRAD(grad_tanh); break;
    case PDN_PLSE: PDN_GRAD(grad_plse); break;
    case PDN_REVLEAKY:   /* AB's GPU build divides by leaky's gradient (its CPU multiplies) */
        #pragma omp parallel for schedule(static) if(n > 16384)
        for (i = 0; i < n; ++i) delta[i] /= grad_leaky(y[i]);
        break;
    case PDN_LEAKY: PDN_GRAD(grad_leaky); break;
    case PDN_ELU: PDN_GRAD(grad_elu); break;
    case PDN_LOGGY: PDN_GRAD(grad_loggy); break;
    case PDN_STAIR: PDN_GRAD(grad_stair); break;
    case PDN_HARDTAN: PDN_GRAD(grad_hardtan); break;
    case PDN_LHTAN: PDN_GRAD(grad_lhtan); break;
    case PDN_SELU: PDN_GRAD(grad_selu); break;
    case PDN_GELU: PDN_GRAD(grad_gelu); break;
    case PDN_RELU6: PDN_GRAD(grad_relu6); break;
    case PDN_SWISH:
        /* gradient_array_swish: y + sigmoid(x) * (1 - y) */
        if (!x) return -2;
        #pragma omp parallel for schedule(static) if(n > 16384)
        for (i = 0; i < n; ++i) {
            const float s = act_logistic(x[i]);
            delta[i] *= y[i] + s * (1 - y[i]);
        }
        break;
    case PDN_MISH:
        if (!x) return -2;
        #pragma omp parallel for simd schedule(static) if(n > 16384)
        for (i = 0; i < n; ++i) delta[i] *= grad_mish(x[i]);
        break;
    case PDN_HARD_MISH:
        if (!x) return -2;
        #pragma omp parallel for schedule(static) if(n > 16384)
        for (i = 0; i < n; ++i) delta[i] *= grad_hard_mish(x[i]);
        break;
    default: return -1;
    }
    return 0;
}

/* The normalize_channels* gradients of AB's GPU build (its CPU build multiplies each pixel's
 * deltas by sum_k y_k * delta_k instead): normalize_channels delta *= y where y > 0 (the
 * others are left as they are); the softmax ones delta *= y (1 - y), a non-finite result 0. */
static void gradient_norm_channels(float *delta, const float *y, ptrdiff_t n, int softmax)
{
    ptrdiff_t i;
    #pragma omp parallel for schedule(static) if(n > PDN_PAR_MIN)
    for (i = 0; i < n; ++i) {
        if (softmax) {
            const float d = delta[i] * (y[i] * (1 - y[i]));
            delta[i] = isfinite(d) ? d : 0.f;
        } else if (y[i] > 0) {
            delta[i] *= y[i];
        }
    }
}

PDN_WIDE int pdn_gradient(float *delta, const float *y, const float *x, int batch, int channels,
                 ptrdiff_t spatial, int code)
{
    switch (code) {
    case PDN_NORM_CHAN:
        gradient_norm_channels(delta, y, (ptrdiff_t)batch * channels * spatial, 0);
        return 0;
    case PDN_NORM_CHAN_SOFTMAX:
    case PDN_NORM_CHAN_SOFTMAX_MAXVAL:
        gradient_norm_channels(delta, y, (ptrdiff_t)batch * channels * spatial, 1);
        return 0;
    default:
        return gradient_elementwise(delta, y, x, (ptrdiff_t)batch * channels * spatial, code);
    }
}
