#ifndef PDN_POOL_H
#define PDN_POOL_H

/* Darknet maxpool / local_avgpool window geometry: out[oy,ox] covers input rows
 * oy*sy - pad/2 + [0,size) and columns ox*sx - pad/2 + [0,size); cells outside the
 * image are skipped. x[N*C,H,W] -> out[N*C,OH,OW]. */
void pdn_maxpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                 int size, int sy, int sx, int pad);
/* Average over the in-image cells of the window (0 if there are none). */
void pdn_local_avgpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                       int size, int sy, int sx, int pad);
/* out[i] = mean of x[i, 0:spatial] (sequential float sum, then / spatial). */
void pdn_global_avgpool(const float *x, float *out, int NC, long spatial);

#endif
