#include "conv.h"
#include "im2col.h"
#include "blas.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* im2col works on bands of output rows so that its buffer stays a few MB (cache friendly,
 * no page faults): about PDN_COL_FLOATS floats per band, at least PDN_COL_MIN columns. */
#define PDN_COL_FLOATS (1 << 21)
#define PDN_COL_MIN 1024

/* Per-thread workspace, grown on demand and kept (like Darknet's shared workspace). */
static __thread float *pdn_ws = NULL;
static __thread size_t pdn_ws_size = 0;

static float *workspace(size_t n)
{
    if (n > pdn_ws_size) {
        free(pdn_ws);
        pdn_ws = (float *)malloc(n * sizeof(float));
        pdn_ws_size = pdn_ws ? n : 0;
    }
    return pdn_ws;
}

int pdn_conv2d(const float *x, const float *w, float *out,
               int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
               int sy, int sx, int py, int px, int dil, int groups)
{
    const int cg = groups > 0 ? C / groups : 0, fg = groups > 0 ? F / groups : 0;
    const int K = cg * kh * kw;
    const ptrdiff_t ohw = (ptrdiff_t)OH * OW, hw = (ptrdiff_t)H * W;
    const int direct = (kh == 1 && kw == 1 && sy == 1 && sx == 1 && py == 0 && px == 0 &&
                        OH == H && OW == W);
    float *col = NULL;
    int n, g, band = OH, rc = 0;

    if (groups < 1 || C % groups || F % groups || sy < 1 || sx < 1 || dil < 1) return -3;
    if (N == 0 || F == 0 || ohw == 0) return 0;
    if (K == 0) {
        memset(out, 0, (size_t)N * F * ohw * sizeof(float));
        return 0;
    }
    if (ohw > 0x7fffffff) return -3;
    if (!direct) {
        ptrdiff_t cols = PDN_COL_FLOATS / K;
        if (cols < PDN_COL_MIN) cols = PDN_COL_MIN;
        band = (int)(cols / OW);
        if (band < 1) band = 1;
        if (band > OH) band = OH;
        col = workspace((size_t)K * band * OW);
        if (!col) return -2;
    }
    for (n = 0; n < N && rc == 0; ++n) {
        for (g = 0; g < groups && rc == 0; ++g) {
            const float *xg = x + ((ptrdiff_t)n * C + (ptrdiff_t)g * cg) * hw;
            const float *wg = w + (ptrdiff_t)g * fg * K;
            float *og = out + ((ptrdiff_t)n * F + (ptrdiff_t)g * fg) * ohw;
            int oy0;
            if (direct) {
                rc = pdn_gemm(0, 0, fg, (int)ohw, K, 1.f, wg, K, xg, (int)ohw, 0.f, og, (int)ohw);
                continue;
            }
            for (oy0 = 0; oy0 < OH && rc == 0; oy0 += band) {
                const int oy1 = oy0 + band < OH ? oy0 + band : OH;
                const int ncol = (oy1 - oy0) * OW;
                pdn_im2col(xg, cg, H, W, kh, kw, sy, sx, py, px, dil, OW, oy0, oy1, col);
                rc = pdn_gemm(0, 0, fg, ncol, K, 1.f, wg, K, col, ncol, 0.f,
                              og + (ptrdiff_t)oy0 * OW, (int)ohw);
            }
        }
    }
    return rc;
}

int pdn_conv2d_backward(const float *x, const float *w, const float *delta, float *dx,
                        float *dw, int N, int C, int H, int W, int F, int kh, int kw,
                        int OH, int OW, int sy, int sx, int py, int px, int dil, int groups)
{
    const int cg = groups > 0 ? C / groups : 0, fg = groups > 0 ? F / groups : 0;
    const int K = cg * kh * kw;
    const ptrdiff_t ohw = (ptrdiff_t)OH * OW, hw = (ptrdiff_t)H * W;
    const int direct = (kh == 1 && kw == 1 && sy == 1 && sx == 1 && py == 0 && px == 0 &&
                        OH == H && OW == W);
    float *col = NULL;
    int n, g, band = OH, rc = 0;

    if (groups < 1 || C % groups || F % groups || sy < 1 || sx < 1 || dil < 1) return -3;
    if (N == 0 || F == 0 || ohw == 0 || K == 0) return 0;
    if (ohw > 0x7fffffff) return -3;
    if (!direct) {
        ptrdiff_t cols = PDN_COL_FLOATS / K;
        if (cols < PDN_COL_MIN) cols = PDN_COL_MIN;
        band = (int)(cols / OW);
        if (band < 1) band = 1;
        if (band > OH) band = OH;
        col = workspace((size_t)K * band * OW);
        if (!col) return -2;
    }
    for (n = 0; n < N && rc == 0; ++n) {
        for (g = 0; g < groups && rc == 0; ++g) {
            const ptrdiff_t xoff = ((ptrdiff_t)n * C + (ptrdiff_t)g * cg) * hw;
            const float *xg = x + xoff;
            const float *wg = w + (ptrdiff_t)g * fg * K;
            const float *dg = delta + ((ptrdiff_t)n * F + (ptrdiff_t)g * fg) * ohw;
            float *dwg = dw + (ptrdiff_t)g * fg * K;
            int oy0;
            if (direct) {
                /* dw[fg, cg] += delta[fg, hw] x[cg, hw]^T;  dx[cg, hw] += w[fg, cg]^T delta */
                rc = pdn_gemm(0, 1, fg, K, (int)ohw, 1.f, dg, (int)ohw, xg, (int)ohw, 1.f,
                              dwg, K);
                if (rc == 0 && dx)
                    rc = pdn_gemm(1, 0, K, (int)ohw, fg, 1.f, wg, K, dg, (int)ohw, 1.f,
                                  dx + xoff, (int)ohw);
                continue;
            }
            for (oy0 = 0; oy0 < OH && rc == 0; oy0 += band) {
                const int oy1 = oy0 + band < OH ? oy0 + band : OH;
                const int ncol = (oy1 - oy0) * OW;
                const float *db = dg + (ptrdiff_t)oy0 * OW;
                /* dw[fg, K] += delta[fg, band] col[K, band]^T */
                pdn_im2col(xg, cg, H, W, kh, kw, sy, sx, py, px, dil, OW, oy0, oy1, col);
                rc = pdn_gemm(0, 1, fg, K, ncol, 1.f, db, (int)ohw, col, ncol, 1.f, dwg, K);
                if (rc != 0 || !dx) continue;
                /* col[K, band] = w[fg, K]^T delta[fg, band], then added into dx */
                rc = pdn_gemm(1, 0, K, ncol, fg, 1.f, wg, K, db, (int)ohw, 0.f, col, ncol);
                if (rc == 0)
                    pdn_col2im_add(col, cg, H, W, kh, kw, sy, sx, py, px, dil, OW, oy0, oy1,
                                   dx + xoff);
            }
        }
    }
    return rc;
}
