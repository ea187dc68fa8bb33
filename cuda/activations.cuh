/* Darknet activations and their gradients as device functors, the same formulas as
 * src_c/activations.c (AlexeyAB/darknet semantics). The codes are the order of
 * pydarknet.backend.ACTIVATIONS. Shared by activations.cu and the fused bias / batch-norm
 * kernels of batchnorm.cu. */
#ifndef PDN_ACTIVATIONS_CUH
#define PDN_ACTIVATIONS_CUH

#include "common.cuh"

enum {
    PDN_LOGISTIC = 0, PDN_RELU, PDN_RELIE, PDN_LINEAR, PDN_RAMP, PDN_TANH, PDN_PLSE,
    PDN_REVLEAKY, PDN_LEAKY, PDN_ELU, PDN_LOGGY, PDN_STAIR, PDN_HARDTAN, PDN_LHTAN,
    PDN_SELU, PDN_GELU, PDN_SWISH, PDN_MISH, PDN_HARD_MISH, PDN_RELU6,
    PDN_NORM_CHAN, PDN_NORM_CHAN_SOFTMAX, PDN_NORM_CHAN_SOFTMAX_MAXVAL,
    PDN_NUM_ACTIVATIONS
};

__device__ __forceinline__ float pdn_logistic(float x) { return 1.f / (1.f + expf(-x)); }

/* ---- forward: float operator()(float x) ---- */
struct ActLinear { __device__ float operator()(float x) const { return x; } };
struct ActLogistic { __device__ float operator()(float x) const { return pdn_logistic(x); } };
struct ActLoggy {
    __device__ float operator()(float x) const { return 2.f / (1.f + expf(-x)) - 1.f; }
};
struct ActRelu { __device__ float operator()(float x) const { return x * (float)(x > 0.f); } };
struct ActRelu6 {
    __device__ float operator()(float x) const
    {
        const float y = x > 0.f ? x : 0.f;
        return y < 6.f ? y : 6.f;
    }
};
struct ActElu {
    __device__ float operator()(float x) const { return x >= 0.f ? x : expf(x) - 1.f; }
};
struct ActSelu {
    __device__ float operator()(float x) const
    {
        return x >= 0.f ? 1.0507f * x : 1.0507f * 1.6732f * (expf(x) - 1.f);
    }
};
struct ActRelie { __device__ float operator()(float x) const { return x > 0.f ? x : .01f * x; } };
struct ActRamp {
    __device__ float operator()(float x) const { return x * (float)(x > 0.f) + .1f * x; }
};
struct ActLeaky { __device__ float operator()(float x) const { return x > 0.f ? x : .1f * x; } };
struct ActTanh {
    __device__ float operator()(float x) const { return 2.f / (1.f + expf(-2.f * x)) - 1.f; }
};
struct ActGelu {
    __device__ float operator()(float x) const
    {
        return 0.5f * x * (1.f + tanhf(0.797885f * x + 0.035677f * (x * x * x)));
    }
};
struct ActPlse {
    __device__ float operator()(float x) const
    {
        if (x < -4.f) return .01f * (x + 4.f);
        if (x > 4.f) return .01f * (x - 4.f) + 1.f;
        return .125f * x + .5f;
    }
};
struct ActStair {
    __device__ float operator()(float x) const
    {
        // beyond int's range the GPU saturates (int)x (odd INT_MAX) where x86 gives INT_MIN
        // (even): the CPU backend's (Darknet's x86) branch, so both backends agree
        if (!(fabsf(x) < 2147483648.f)) return floorf(x / 2.f);
        const int n = (int)floorf(x);
        if (n % 2 == 0) return floorf(x / 2.f);
        return (x - (float)n) + floorf(x / 2.f);
    }
};
struct ActHardtan {
    __device__ float operator()(float x) const { return x < -1.f ? -1.f : (x > 1.f ? 1.f : x); }
};
struct ActLhtan {
    __device__ float operator()(float x) const
    {
        if (x < 0.f) return .001f * x;
        if (x > 1.f) return .001f * (x - 1.f) + 1.f;
        return x;
    }
};
/* Mish = x * tanh(softplus(x)), softplus threshold 20, in one exp: with e = exp(x),
 * tanh(log(1 + e)) = n / (n + 2), n = e * (e + 2). Above the threshold Darknet's value is
 * x * tanh(x) == x in float. */
struct ActMish {
    __device__ float operator()(float x) const
    {
        const float e = expf(x);
        const float n = e * (e + 2.f);
        const float m = x * n / (n + 2.f);
        return x > 20.f ? x : m;
    }
};
struct ActSwish { __device__ float operator()(float x) const { return x * pdn_logistic(x); } };
struct ActHardMish {
    __device__ float operator()(float x) const
    {
        if (x > 0.f) return x;
        if (x > -2.f) return x * x / 2.f + x;
        return 0.f;
    }
};

/* CALL(Functor) for the element-wise activation `code`; linear included (the caller may
 * skip it). Unknown and cross-channel codes run nothing. */
#define PDN_ACT_SWITCH(code, CALL)                              \
    switch (code) {                                             \
    case PDN_LINEAR: CALL(ActLinear); break;                    \
    case PDN_LOGISTIC: CALL(ActLogistic); break;                \
    case PDN_RELU: CALL(ActRelu); break;                        \
    case PDN_RELIE: CALL(ActRelie); break;                      \
    case PDN_RAMP: CALL(ActRamp); break;                        \
    case PDN_TANH: CALL(ActTanh); break;                        \
    case PDN_PLSE: CALL(ActPlse); break;                        \
    case PDN_REVLEAKY:                                          \
    case PDN_LEAKY: CALL(ActLeaky); break;                      \
    case PDN_ELU: CALL(ActElu); break;                          \
    case PDN_LOGGY: CALL(ActLoggy); break;                      \
    case PDN_STAIR: CALL(ActStair); break;                      \
    case PDN_HARDTAN: CALL(ActHardtan); break;                  \
    case PDN_LHTAN: CALL(ActLhtan); break;                      \
    case PDN_SELU: CALL(ActSelu); break;                        \
    case PDN_GELU: CALL(ActGelu); break;                        \
    case PDN_SWISH: CALL(ActSwish); break;                      \
    case PDN_MISH: CALL(ActMish); break;                        \
    case PDN_HARD_MISH: CALL(ActHardMish); break;               \
    case PDN_RELU6: CALL(ActRelu6); break;                      \
    default: break;                                             \
    }

/* ---- gradients: float operator()(float y, float x), y the activated output, x the
 * pre-activation; uses_y / uses_x say which one is read ---- */
#define PDN_GRAD_FROM_Y(NAME, EXPR)                                     \
    struct NAME {                                                       \
        static constexpr bool uses_y = true, uses_x = false;            \
        __device__ float operator()(float y, float) const { return EXPR; } \
    };
PDN_GRAD_FROM_Y(GradLinear, 1.f)
PDN_GRAD_FROM_Y(GradLogistic, (1.f - y) * y)
PDN_GRAD_FROM_Y(GradRelu, (float)(y > 0.f))
PDN_GRAD_FROM_Y(GradRelu6, (float)(y > 0.f && y < 6.f))
PDN_GRAD_FROM_Y(GradElu, (float)(y >= 0.f) + (float)(y < 0.f) * (y + 1.f))
PDN_GRAD_FROM_Y(GradSelu, (float)(y >= 0.f) * 1.0507f + (float)(y < 0.f) * (y + 1.0507f * 1.6732f))
PDN_GRAD_FROM_Y(GradRelie, y > 0.f ? 1.f : .01f)
PDN_GRAD_FROM_Y(GradRamp, (float)(y > 0.f) + .1f)
PDN_GRAD_FROM_Y(GradLeaky, y > 0.f ? 1.f : .1f)
PDN_GRAD_FROM_Y(GradTanh, 1.f - y * y)
PDN_GRAD_FROM_Y(GradPlse, (y < 0.f || y > 1.f) ? .01f : .125f)
PDN_GRAD_FROM_Y(GradStair, floorf(y) == y ? 0.f : 1.f)
PDN_GRAD_FROM_Y(GradHardtan, (y > -1.f && y < 1.f) ? 1.f : 0.f)
PDN_GRAD_FROM_Y(GradLhtan, (y > 0.f && y < 1.f) ? 1.f : .001f)
#undef PDN_GRAD_FROM_Y

struct GradLoggy {
    static constexpr bool uses_y = true, uses_x = false;
    __device__ float operator()(float y, float) const
    {
        const float t = (y + 1.f) / 2.f;
        return 2.f * (1.f - t) * t;
    }
};
/* Darknet's gelu_gradient, evaluated at y (sech(t) = 2 / (exp(t) + exp(-t))) */
struct GradGelu {
    static constexpr bool uses_y = true, uses_x = false;
    __device__ float operator()(float y, float) const
    {
        const float y3 = y * y * y;
        const float t = 0.0356774f * y3 + 0.797885f * y;
        const float sech = 2.f / (expf(t) + expf(-t));
        return 0.5f * tanhf(t) + (0.0535161f * y3 + 0.398942f * y) * (sech * sech) + 0.5f;
    }
};
/* gradient_array_swish: y + sigmoid(x) * (1 - y) */
struct GradSwish {
    static constexpr bool uses_y = true, uses_x = true;
    __device__ float operator()(float y, float x) const
    {
        const float s = pdn_logistic(x);
        return y + s * (1.f - y);
    }
};
/* Mish'(x), one exp: with e = exp(x), n = e*(e+2), d = n + 2:
 * mish' = n/d + 4*x*e*(1+e)/d^2  (= tsp + x*(1-tsp^2)*sigmoid(x), tsp = tanh(softplus(x)));
 * 1 above the softplus threshold 20. */
struct GradMish {
    static constexpr bool uses_y = false, uses_x = true;
    __device__ float operator()(float, float x) const
    {
        const float e = expf(x);
        const float n = e * (e + 2.f);
        const float d = n + 2.f;
        const float g = n / d + 4.f * x * e * (1.f + e) / (d * d);
        return x > 20.f ? 1.f : g;
    }
};
struct GradHardMish {
    static constexpr bool uses_y = false, uses_x = true;
    __device__ float operator()(float, float x) const
    {
        if (x > 0.f) return 1.f;
        if (x > -2.f) return x + 1.f;
        return 0.f;
    }
};

/* CALL(Functor) for the element-wise gradient of `code`; unknown and cross-channel codes run
 * nothing (linear: the caller may skip it; revleaky divides: pdn_gradient runs it). */
#define PDN_GRAD_SWITCH(code, CALL)                             \
    switch (code) {                                             \
    case PDN_LINEAR: break;                                     \
    case PDN_LOGISTIC: CALL(GradLogistic); break;               \
    case PDN_RELU: CALL(GradRelu); break;                       \
    case PDN_RELIE: CALL(GradRelie); break;                     \
    case PDN_RAMP: CALL(GradRamp); break;                       \
    case PDN_TANH: CALL(GradTanh); break;                       \
    case PDN_PLSE: CALL(GradPlse); break;                       \
    case PDN_LEAKY: CALL(GradLeaky); break;                     \
    case PDN_ELU: CALL(GradElu); break;                         \
    case PDN_LOGGY: CALL(GradLoggy); break;                     \
    case PDN_STAIR: CALL(GradStair); break;                     \
    case PDN_HARDTAN: CALL(GradHardtan); break;                 \
    case PDN_LHTAN: CALL(GradLhtan); break;                     \
    case PDN_SELU: CALL(GradSelu); break;                       \
    case PDN_GELU: CALL(GradGelu); break;                       \
    case PDN_SWISH: CALL(GradSwish); break;                     \
    case PDN_MISH: CALL(GradMish); break;                       \
    case PDN_HARD_MISH: CALL(GradHardMish); break;              \
    case PDN_RELU6: CALL(GradRelu6); break;                     \
    default: break;                                             \
    }

#endif
