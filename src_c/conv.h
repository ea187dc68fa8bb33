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

/* Its backward (Darknet's backward_convolutional_layer without the bias / batch-norm part),
 * accumulating: per image and group dw[F,C/groups,kh,kw] += delta (x) im2col(x), and, when
 * dx is not NULL, dx[N,C,H,W] += col2im(w^T delta) (added, never overwritten).
 * delta[N,F,OH,OW]. Same geometry, 1x1 shortcut and return codes as pdn_conv2d. */
int pdn_conv2d_backward(const float *x, const float *w, const float *delta, float *dx,
                        float *dw, int N, int C, int H, int W, int F, int kh, int kw,
                        int OH, int OW, int sy, int sx, int py, int px, int dil, int groups);

#endif
