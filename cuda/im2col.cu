/* im2col / col2im for one image (and one group) with Darknet's geometry (src_c/im2col.c):
 * col[(c*kh + ky)*kw + kx, oy*OW + ox] = im[c, oy*sy - py + ky*dil, ox*sx - px + kx*dil]
 * (0 outside the image); im [C, H, W], col [C*kh*kw, OH*OW]. OH and OW are the caller's
 * (Darknet's conv output size ignores the dilation). The GEMMs around them go to cuBLAS.
 *
 *   pdn_im2col(im, C, H, W, kh, kw, sy, sx, py, px, dil, OH, OW, col)      col written
 *   pdn_col2im_add(col, C, H, W, kh, kw, sy, sx, py, px, dil, OH, OW, im)  im += col2im(col)
 *
 * col2im gathers (one thread per image cell sums the columns that read it), so it needs no
 * atomics and its result does not depend on the launch. */
#include "common.cuh"

extern "C" __global__ void pdn_im2col(const float *im, int C, int H, int W, int kh, int kw,
                                      int sy, int sx, int py, int px, int dil, int OH, int OW,
                                      float *col)
{
    const long long ohw = (long long)OH * OW;
    pdn_grid_loop((long long)C * kh * kw * ohw, [&](auto i) {
        using I = decltype(i);
        const I pos = i % (I)ohw, r = i / (I)ohw;
        const int ox = (int)(pos % (I)OW), oy = (int)(pos / (I)OW);
        const int kx = (int)(r % (I)kw), ky = (int)((r / (I)kw) % (I)kh);
        const int c = (int)(r / ((I)kw * (I)kh));
        const int iy = oy * sy - py + ky * dil, ix = ox * sx - px + kx * dil;
        col[i] = (iy >= 0 && iy < H && ix >= 0 && ix < W)
                     ? im[((long long)c * H + iy) * W + ix] : 0.f;
    });
}

extern "C" __global__ void pdn_col2im_add(const float *col, int C, int H, int W, int kh, int kw,
                                          int sy, int sx, int py, int px, int dil, int OH,
                                          int OW, float *im)
{
    const long long ohw = (long long)OH * OW;
    pdn_grid_loop((long long)C * H * W, [&](auto i) {
        using I = decltype(i);
        const int x = (int)(i % (I)W), y = (int)((i / (I)W) % (I)H);
        const int c = (int)(i / ((I)W * (I)H));
        float sum = 0.f;
        for (int ky = 0; ky < kh; ++ky) {
            const int ty = y + py - ky * dil;          /* = oy * sy */
            if (ty < 0 || ty % sy) continue;
            const int oy = ty / sy;
            if (oy >= OH) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const int tx = x + px - kx * dil;      /* = ox * sx */
                if (tx < 0 || tx % sx) continue;
                const int ox = tx / sx;
                if (ox >= OW) continue;
                sum += col[(((long long)c * kh + ky) * kw + kx) * ohw + (long long)oy * OW + ox];
            }
        }
        im[i] += sum;
    });
}
