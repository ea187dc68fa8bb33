/* Darknet activations (AlexeyAB/darknet semantics), applied in place.
 * The enum order is the order of pydarknet.backend.ACTIVATIONS. */
#ifndef PDN_ACTIVATIONS_H
#define PDN_ACTIVATIONS_H
#include <stddef.h>

typedef enum {
    PDN_LOGISTIC = 0, PDN_RELU, PDN_RELIE, PDN_LINEAR, PDN_RAMP, PDN_TANH, PDN_PLSE,
    PDN_REVLEAKY, PDN_LEAKY, PDN_ELU, PDN_LOGGY, PDN_STAIR, PDN_HARDTAN, PDN_LHTAN,
    PDN_SELU, PDN_GELU, PDN_SWISH, PDN_MISH, PDN_HARD_MISH, PDN_RELU6,
    PDN_NORM_CHAN, PDN_NORM_CHAN_SOFTMAX, PDN_NORM_CHAN_SOFTMAX_MAXVAL,
    PDN_NUM_ACTIVATIONS
} pdn_activation;

/* Elementwise activation of n floats in place. Returns 0, or -1 for an unknown code
 * or a cross-channel code (use pdn_activate_channels for those). */
int pdn_activate(float *x, ptrdiff_t n, int code);

/* The same on the calling thread only (for loops that are parallel already). */
int pdn_activate_span(float *x, ptrdiff_t n, int code);

/* Any activation on an NCHW tensor (batch, channels, spatial) in place; the
 * normalize_channels* codes work per pixel across channels. Returns 0 or -1. */
int pdn_activate_channels(float *x, int batch, int channels, ptrdiff_t spatial, int code);

/* Backward: delta[batch, channels, spatial] *= f'(.) in place, with Darknet's *_gradient
 * formulas evaluated at the activated output y, except swish (y and the pre-activation x),
 * mish and hard_mish (x only). Returns 0, -1 for an unknown code, -2 when x is needed
 * and NULL. */
int pdn_gradient(float *delta, const float *y, const float *x, int batch, int channels,
                 ptrdiff_t spatial, int code);

/* The number of NaN and inf values among x[0..n) (an exponent test: no FP exceptions). */
ptrdiff_t pdn_count_nonfinite(const float *x, ptrdiff_t n);

#endif
