#ifndef PDN_UPSAMPLE_H
#define PDN_UPSAMPLE_H

/* out[p, y, x] = scale * in[p, y/stride, x/stride]; in[NC,H,W], out[NC,H*stride,W*stride]. */
void pdn_upsample(const float *in, float *out, int NC, int H, int W, int stride, float scale);

/* Darknet's reverse upsample: out[NC,OH,OW] is zeroed, then for y < OH*stride,
 * x < OW*stride (row-major order): out[p, y/stride, x/stride] += scale * in[p, y, x],
 * with in[NC,H,W] (H >= OH*stride, W >= OW*stride). */
void pdn_downsample_sum(const float *in, float *out, int NC, int H, int W, int OH, int OW,
                        int stride, float scale);

#endif
