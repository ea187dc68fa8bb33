#ifndef PDN_CONV_H
#define PDN_CONV_H

/* Darknet convolution (im2col + sgemm per image and group), NCHW / OIHW:
 * x[N,C,H,W], w[F,C/groups,kh,kw], out[N,F,OH,OW] (written in full).
 * 1x1, stride 1, pad 0 convs (with OH==H, OW==W) call sgemm on the input directly.
 * Returns 0, -1 when no sgemm is set, -2 when the workspace cannot be allocated,
 * -3 for bad arguments. */
int pdn_conv2d(const float *x, const float *w, float *out,
               int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
               int sy, int sx, int py, int px, int dil, int groups);

#endif
