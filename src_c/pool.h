#ifndef PDN_POOL_H
#define PDN_POOL_H
#include <stddef.h>

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


/* Training maxpool: pdn_maxpool's output plus, per output, the flat index into x[N*C,H,W]
 * (over the whole batch) of the first maximum (strict >, Darknet's l.indexes); -1 where
 * the window holds no cell of the image. */
void pdn_maxpool_train(const float *x, float *out, int *indexes, int NC, int H, int W,
                       int OH, int OW, int size, int sy, int sx, int pad);
/* dx[indexes[i]] += delta[i] for delta/indexes [planes, per_plane] and dx
 * [planes, dx_per_plane]; race-free (see pool.c); indexes outside dx are skipped. */
void pdn_maxpool_backward(const float *delta, const int *indexes, float *dx, ptrdiff_t planes,
                          ptrdiff_t per_plane, ptrdiff_t dx_per_plane);
/* Backward of pdn_local_avgpool, accumulating: each output's delta divided by its count of
 * in-image cells is added to those cells of dx[N*C,H,W]. */
void pdn_local_avgpool_backward(const float *delta, float *dx, int NC, int H, int W, int OH,
                                int OW, int size, int sy, int sx, int pad);

#endif
