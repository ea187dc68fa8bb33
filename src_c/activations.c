#include "activations.h"
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
    int n = (int)floorf(x);
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
    x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
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
        _Pragma("omp parallel for schedule(static) if(n > 16384)")    \
        for (i = 0; i < n; ++i) x[i] = FN(x[i]);                            \
    } while (0)

int pdn_activate(float *x, ptrdiff_t n, int code)
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
#pragma omp parallel for simd schedule(static) if(n > 16384)
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
