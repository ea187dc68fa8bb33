/* Darknet's convolution through oneDNN (v3 C API), same contract as conv.h: NCHW / OIHW
 * float32, out written in full, backward accumulating into dw and dx.
 *
 * Built only with -DPDN_WITH_ONEDNN (setup.py sets it when oneDNN's headers are found);
 * otherwise every call returns PDN_ONEDNN_UNAVAILABLE and the caller uses im2col + sgemm.
 * Primitives are created once per geometry (and direction) and cached; a geometry oneDNN
 * cannot do as Darknet does returns PDN_ONEDNN_DECLINED, and the caller falls back. */
#ifndef PDN_ONEDNN_CONV_H
#define PDN_ONEDNN_CONV_H

#define PDN_ONEDNN_UNAVAILABLE 1     /* built without oneDNN */
#define PDN_ONEDNN_DECLINED 2        /* this geometry goes to the fallback */
#define PDN_ONEDNN_SGEMM 3           /* the C core's im2col + sgemm is the faster path here */

/* 1 when the extension was built with oneDNN. */
int pdn_onednn_built(void);

/* Forward: out[N,F,OH,OW] = conv(x[N,C,H,W], w[F,C/groups,kh,kw]), Darknet's geometry (pads
 * py/px on the top/left; the bottom/right padding is whatever Darknet's OH/OW imply).
 * Returns 0, PDN_ONEDNN_UNAVAILABLE, PDN_ONEDNN_DECLINED, PDN_ONEDNN_SGEMM (the caller
 * runs the C core's path; these three write nothing), or < 0 on an oneDNN error. */
int pdn_onednn_conv2d(const float *x, const float *w, float *out,
                      int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
                      int sy, int sx, int py, int px, int dil, int groups);

/* Inference: out = act(bn(conv(x, w))) in one pass, Darknet's batch norm
 * (x - mean) / sqrt(var + eps) * scale + bias when scale is not NULL (mean, var too), else
 * out = act(conv(x, w) + bias). act: a pdn_activation code; the ones oneDNN computes as
 * Darknet does (linear, logistic, relu, leaky, swish, mish) are fused, any other returns
 * PDN_ONEDNN_DECLINED (the caller then runs the convolution and the activation apart);
 * PDN_ONEDNN_SGEMM: the same, with the convolution by im2col + sgemm (ungrouped,
 * undilated convolutions without swish or logistic: see sgemm_is_faster). */
int pdn_onednn_conv2d_inference(const float *x, const float *w, float *out,
                                int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                int OW, int sy, int sx, int py, int px, int dil, int groups,
                                const float *scale, const float *mean, const float *var,
                                const float *bias, float eps, int act);

/* Backward: dw += dL/dw and, when dx != NULL, dx += dL/dx (delta[N,F,OH,OW]). Same returns. */
int pdn_onednn_conv2d_backward(const float *x, const float *w, const float *delta, float *dx,
                               float *dw, int N, int C, int H, int W, int F, int kh, int kw,
                               int OH, int OW, int sy, int sx, int py, int px, int dil,
                               int groups);

/* Whether oneDNN takes this geometry (creates, and caches, its primitives) for the forward
 * (act -1), the inference with batch norm and activation act fused (act >= 0) or the
 * backward (act -2): 0 yes, PDN_ONEDNN_UNAVAILABLE or PDN_ONEDNN_DECLINED. */
int pdn_onednn_conv2d_supported(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                int OW, int sy, int sx, int py, int px, int dil, int groups,
                                int act);

/* Name of the implementation oneDNN chose for that ("" when none). */
const char *pdn_onednn_conv2d_impl(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                   int OW, int sy, int sx, int py, int px, int dil, int groups,
                                   int act);

/* Frees every cached primitive and buffer (tests; the process exit frees them anyway). */
void pdn_onednn_clear_cache(void);

#ifdef PDN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
/* The process's one CPU engine, created on first use (NULL if it cannot be); the C core's
 * oneDNN users (this file's convolutions, winograd.c's matrix products) share it. */
dnnl_engine_t pdn_onednn_engine(void);

/* A stream on that engine in *stream, made on first use and kept: 1, or 0 when none can be.
 * Each user keeps its own (a stream takes one caller at a time). */
int pdn_onednn_stream(dnnl_stream_t *stream);
#endif

#endif
