/* 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin and Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016), for inference on the CPU.
 *
 * Each 4x4 output tile is computed from a 6x6 input tile with 36 products per input/output
 * channel pair instead of 144: input, weights and products are transformed by small
 * constant matrices, and the 36 products of all channel pairs are 36 matrix products
 * (oneDNN's matmul). The transforms are exact in real arithmetic; in float32 the outputs
 * differ from the direct sum by rounding only, about 1e-6 of the layer's largest output
 * (tests/test_winograd.py), so the path serves inference: training keeps the direct
 * convolution, whose gradients Darknet's oracles check.
 *
 * Same contract as conv.h for these geometries: NCHW input, OIHW weights, out[N,F,OH,OW]
 * written in full, Darknet's padding (py rows on top, px columns on the left; the output
 * size gives the rest). Built only with -DPDN_WITH_ONEDNN (the matrix products are
 * oneDNN's); otherwise every call returns PDN_WINOGRAD_DECLINED. */
#ifndef PDN_WINOGRAD_H
#define PDN_WINOGRAD_H

#define PDN_WINOGRAD_DECLINED 2      /* not this geometry (or not built): use another path */

/* 1 when built (with oneDNN). */
int pdn_winograd_built(void);

/* 1 when the geometry is a 3x3, stride-1, undilated, ungrouped convolution whose output
 * and input channels are large enough for the transforms to pay (measured: from about
 * 26x26 outputs and 16 channels up); else 0. */
int pdn_winograd_applies(int C, int H, int W, int F, int kh, int kw, int OH, int OW, int sy,
                         int sx, int py, int px, int dil, int groups);

/* out = conv(x, w) for N images, conv.h's arguments. Returns 0, PDN_WINOGRAD_DECLINED when
 * the geometry is not one pdn_winograd_applies takes (nothing written), -2 when out of memory, -1 on an
 * oneDNN error. */
int pdn_winograd_conv3x3(const float *x, const float *w, float *out, int N, int C, int H,
                         int W, int F, int kh, int kw, int OH, int OW, int sy, int sx, int py,
                         int px, int dil, int groups);

/* Frees the cached matrix-product primitives (tests; the process exit frees them anyway). */
void pdn_winograd_clear_cache(void);

#endif
