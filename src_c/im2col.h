#ifndef PDN_IM2COL_H
#define PDN_IM2COL_H

/* Output rows [oy0, oy1) of one image [C,H,W] -> col[C*kh*kw, (oy1-oy0)*OW], rows in
 * (c, ky, kx) order: col[(c*kh+ky)*kw+kx, (oy-oy0)*OW+ox] =
 * im[c, oy*sy - py + ky*dil, ox*sx - px + kx*dil]  (0 outside the image). */
void pdn_im2col(const float *im, int C, int H, int W, int kh, int kw,
                int sy, int sx, int py, int px, int dil, int OW, int oy0, int oy1,
                float *col);

/* The adjoint of pdn_im2col, ADDING into the image: for output rows [oy0, oy1),
 * im[c, oy*sy - py + ky*dil, ox*sx - px + kx*dil] += col[(c*kh+ky)*kw+kx, (oy-oy0)*OW+ox]
 * for every in-image target (col entries that fall outside the image are dropped).
 * Parallel over channels; the result does not depend on the thread count. */
void pdn_col2im_add(const float *col, int C, int H, int W, int kh, int kw,
                    int sy, int sx, int py, int px, int dil, int OW, int oy0, int oy1,
                    float *im);

#endif
