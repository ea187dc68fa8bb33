#include "pool.h"
#include "wide.h"
#include <stddef.h>
#include <float.h>
#include <stdlib.h>

/* One output row of a 2x2 stride-2 window wholly inside the input (the usual maxpool):
 * the same comparisons in the same order as the general loop below (max = v > max ? v :
 * max, which is what MAXPS computes with v first), on whole vectors where AVX-512 is
 * there: GCC's own vectorisation of the stride-2 reads gathers lane by lane. */
static void maxpool2x2_row(const float *restrict r0, const float *restrict r1,
                           float *restrict o, int OW)
{
    int j;
    for (j = 0; j < OW; ++j) {
        float max = -FLT_MAX, v;
        v = r0[2 * j]; max = (v > max) ? v : max;
        v = r0[2 * j + 1]; max = (v > max) ? v : max;
        v = r1[2 * j]; max = (v > max) ? v : max;
        v = r1[2 * j + 1]; max = (v > max) ? v : max;
        o[j] = max;
    }
}

#ifdef PDN_AVX512_INTRINSICS
#include <immintrin.h>
__attribute__((target("avx512f")))
static void maxpool2x2_row_avx512(const float *restrict r0, const float *restrict r1,
                                  float *restrict o, int OW)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                          29, 31);
    const __m512 lowest = _mm512_set1_ps(-FLT_MAX);
    int j;
    for (j = 0; j < OW; j += 16) {
        /* the last, partial vector reads and writes only its own lanes */
        const int left = OW - j < 16 ? OW - j : 16;
        const __mmask16 m0 = left >= 8 ? 0xFFFF : (__mmask16)((1u << (2 * left)) - 1);
        const __mmask16 m1 = left >= 8 ? (__mmask16)((1u << (2 * (left - 8))) - 1) : 0;
        const __mmask16 mo = (__mmask16)((1u << left) - 1);
        const __m512 a0 = _mm512_maskz_loadu_ps(m0, r0 + 2 * j);
        const __m512 a1 = _mm512_maskz_loadu_ps(m1, r0 + 2 * j + 16);
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, r1 + 2 * j);
        const __m512 b1 = _mm512_maskz_loadu_ps(m1, r1 + 2 * j + 16);
        __m512 max = _mm512_max_ps(_mm512_permutex2var_ps(a0, even, a1), lowest);
        max = _mm512_max_ps(_mm512_permutex2var_ps(a0, odd, a1), max);
        max = _mm512_max_ps(_mm512_permutex2var_ps(b0, even, b1), max);
        max = _mm512_max_ps(_mm512_permutex2var_ps(b0, odd, b1), max);
        _mm512_mask_storeu_ps(o + j, mo, max);
    }
}
#endif

/* The cells of a window of ``size`` from ``start`` (below 0 where it hangs over the edge)
 * that lie in [0, extent): offsets [*lo, *hi) within the window, empty when *lo >= *hi. */
static inline void window_inside(int start, int size, int extent, int *lo, int *hi)
{
    *lo = start < 0 ? -start : 0;
    *hi = extent - start < size ? extent - start : size;
}

/* One plane's general window, directly: size * size comparisons an output. */
static void maxpool_plane(const float *in, float *o, int H, int W, int OH, int OW, int size,
                          int sy, int sx, int off)
{
    int i, j, n, m;
    for (i = 0; i < OH; ++i) {
        const int y0 = off + i * sy;
        int ny0, ny1;
        window_inside(y0, size, H, &ny0, &ny1);
        for (j = 0; j < OW; ++j) {
            const int x0 = off + j * sx;
            int mx0, mx1;
            window_inside(x0, size, W, &mx0, &mx1);
            float max = -FLT_MAX;
            for (n = ny0; n < ny1; ++n) {
                /* an index, not in + ... + x0: x0 < 0 would point before the array */
                const float *row = in + (ptrdiff_t)(y0 + n) * W;
                for (m = mx0; m < mx1; ++m) {
                    const float val = row[x0 + m];
                    max = (val > max) ? val : max;
                }
            }
            o[(ptrdiff_t)i * OW + j] = max;
        }
    }
}

/* The same plane in two passes, 2 * size comparisons an output (SPP's 5x5, 9x9 and 13x13
 * windows): each input row's maximum over every output column's window (rows[H][OW]),
 * then each output's maximum of those over its window's rows. The same value, bit for bit:
 * both keep the first maximum in row-major order (strict >), which the rows pass finds in
 * each row and the columns pass in the topmost row that holds it; NaN is skipped by both. */
static void maxpool_plane_separable(const float *in, float *o, float *rows, int H, int W,
                                    int OH, int OW, int size, int sy, int sx, int off)
{
    int i, j, n, y;
    for (y = 0; y < H; ++y) {
        const float *row = in + (ptrdiff_t)y * W;
        float *r = rows + (ptrdiff_t)y * OW;
        for (j = 0; j < OW; ++j) {
            const int x0 = off + j * sx;
            float max = -FLT_MAX;
            int m, m0, m1;
            window_inside(x0, size, W, &m0, &m1);
            for (m = x0 + m0; m < x0 + m1; ++m) max = (row[m] > max) ? row[m] : max;
            r[j] = max;
        }
    }
    for (i = 0; i < OH; ++i) {
        const int y0 = off + i * sy;
        float *oi = o + (ptrdiff_t)i * OW;
        int n0, n1;
        window_inside(y0, size, H, &n0, &n1);
        for (j = 0; j < OW; ++j) oi[j] = -FLT_MAX;
        for (n = y0 + n0; n < y0 + n1; ++n) {
            const float *r = rows + (ptrdiff_t)n * OW;
            for (j = 0; j < OW; ++j) oi[j] = (r[j] > oi[j]) ? r[j] : oi[j];
        }
    }
}

void pdn_maxpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                 int size, int sy, int sx, int pad)
{
    const int off = -pad / 2;
    int p;
    if (size == 2 && sy == 2 && sx == 2 && off == 0 && 2 * OH <= H && 2 * OW <= W) {
        int wide = 0;
#ifdef PDN_AVX512_INTRINSICS
        wide = __builtin_cpu_supports("avx512f");
#endif
        #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW > 8192)
        for (p = 0; p < NC; ++p) {
            const float *in = x + (ptrdiff_t)p * H * W;
            float *o = out + (ptrdiff_t)p * OH * OW;
            int i;
            for (i = 0; i < OH; ++i) {
                const float *r0 = in + (ptrdiff_t)2 * i * W, *r1 = r0 + W;
#ifdef PDN_AVX512_INTRINSICS
                if (wide) {
                    maxpool2x2_row_avx512(r0, r1, o + (ptrdiff_t)i * OW, OW);
                    continue;
                }
#endif
                maxpool2x2_row(r0, r1, o + (ptrdiff_t)i * OW, OW);
            }
        }
        return;
    }
    #pragma omp parallel if((ptrdiff_t)NC * OH * OW * size * size > 32768)
    {
        /* each thread's rows for the two-pass planes (without it: the direct loop) */
        float *rows = size >= 3 ? malloc((size_t)H * OW * sizeof(float)) : NULL;
        #pragma omp for schedule(static)
        for (p = 0; p < NC; ++p) {
            const float *in = x + (ptrdiff_t)p * H * W;
            float *o = out + (ptrdiff_t)p * OH * OW;
            if (rows)
                maxpool_plane_separable(in, o, rows, H, W, OH, OW, size, sy, sx, off);
            else
                maxpool_plane(in, o, H, W, OH, OW, size, sy, sx, off);
        }
        free(rows);
    }
}

void pdn_local_avgpool(const float *x, float *out, int NC, int H, int W, int OH, int OW,
                       int size, int sy, int sx, int pad)
{
    const int off = -pad / 2;
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW * size * size > 32768)
    for (p = 0; p < NC; ++p) {
        const float *in = x + (ptrdiff_t)p * H * W;
        float *o = out + (ptrdiff_t)p * OH * OW;
        int i, j, n, m;
        for (i = 0; i < OH; ++i) {
            const int y0 = off + i * sy;
            int ny0, ny1;
            window_inside(y0, size, H, &ny0, &ny1);
            for (j = 0; j < OW; ++j) {
                const int x0 = off + j * sx;
                int mx0, mx1;
                window_inside(x0, size, W, &mx0, &mx1);
                float avg = 0;
                int counter = 0;
                for (n = ny0; n < ny1; ++n) {
                    /* an index, not in + ... + x0: x0 < 0 would point before the array */
                    const float *row = in + (ptrdiff_t)(y0 + n) * W;
                    for (m = mx0; m < mx1; ++m) {
                        avg += row[x0 + m];
                        ++counter;
                    }
                }
                o[(ptrdiff_t)i * OW + j] = counter ? avg / counter : 0.f;
            }
        }
    }
}

void pdn_global_avgpool(const float *x, float *out, int NC, long spatial)
{
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * spatial > 32768)
    for (p = 0; p < NC; ++p) {
        const float *in = x + (ptrdiff_t)p * spatial;
        float s = 0;
        long i;
        for (i = 0; i < spatial; ++i) s += in[i];
        out[p] = s / spatial;
    }
}

PDN_WIDE void pdn_maxpool_train(const float *x, float *out, int *indexes, int NC, int H, int W,
                       int OH, int OW, int size, int sy, int sx, int pad)
{
    const int off = -pad / 2;
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW * size * size > 32768)
    for (p = 0; p < NC; ++p) {
        const ptrdiff_t base = (ptrdiff_t)p * H * W;
        const float *in = x + base;
        float *o = out + (ptrdiff_t)p * OH * OW;
        int *ix = indexes + (ptrdiff_t)p * OH * OW;
        int i, j, n, m;
        for (i = 0; i < OH; ++i) {
            const int y0 = off + i * sy;
            int ny0, ny1;
            window_inside(y0, size, H, &ny0, &ny1);
            for (j = 0; j < OW; ++j) {
                const int x0 = off + j * sx;
                int mx0, mx1;
                window_inside(x0, size, W, &mx0, &mx1);
                float max = -FLT_MAX;
                ptrdiff_t max_i = -1;
                for (n = ny0; n < ny1; ++n) {
                    const ptrdiff_t r = (ptrdiff_t)(y0 + n) * W + x0;
                    for (m = mx0; m < mx1; ++m) {
                        /* strict: the first maximum wins; selects, not a branch (random
                         * data mispredicts half of them) */
                        const float val = in[r + m];
                        const int gt = val > max;
                        max = gt ? val : max;
                        max_i = gt ? base + r + m : max_i;
                    }
                }
                o[(ptrdiff_t)i * OW + j] = max;
                ix[(ptrdiff_t)i * OW + j] = (int)max_i;
            }
        }
    }
}

void pdn_maxpool_backward(const float *delta, const int *indexes, float *dx, ptrdiff_t planes,
                          ptrdiff_t per_plane, ptrdiff_t dx_per_plane)
{
    const ptrdiff_t total = planes * dx_per_plane;
    ptrdiff_t p, stray = 0;
    /* Each plane's outputs normally point into the same plane of dx: planes are disjoint
     * between threads. Indexes elsewhere in dx are counted here and added afterwards in one
     * serial pass; indexes outside dx (-1: a window with no cell in the image) are skipped. */
    #pragma omp parallel for schedule(static) reduction(+:stray) if(planes * per_plane > 32768)
    for (p = 0; p < planes; ++p) {
        const ptrdiff_t lo = p * dx_per_plane, hi = lo + dx_per_plane;
        const float *d = delta + p * per_plane;
        const int *ix = indexes + p * per_plane;
        ptrdiff_t i;
        for (i = 0; i < per_plane; ++i) {
            const ptrdiff_t k = ix[i];
            if (k >= lo && k < hi) dx[k] += d[i];
            else if (k >= 0 && k < total) ++stray;
        }
    }
    if (stray) {
        for (p = 0; p < planes; ++p) {
            const ptrdiff_t lo = p * dx_per_plane, hi = lo + dx_per_plane;
            ptrdiff_t i;
            for (i = 0; i < per_plane; ++i) {
                const ptrdiff_t k = indexes[p * per_plane + i];
                if ((k < lo || k >= hi) && k >= 0 && k < total) dx[k] += delta[p * per_plane + i];
            }
        }
    }
}

void pdn_local_avgpool_backward(const float *delta, float *dx, int NC, int H, int W, int OH,
                                int OW, int size, int sy, int sx, int pad)
{
    const int off = -pad / 2;
    int p;
    #pragma omp parallel for schedule(static) if((ptrdiff_t)NC * OH * OW * size * size > 32768)
    for (p = 0; p < NC; ++p) {
        float *g = dx + (ptrdiff_t)p * H * W;
        const float *d = delta + (ptrdiff_t)p * OH * OW;
        int i, j, n, m;
        for (i = 0; i < OH; ++i) {
            const int y0 = off + i * sy;
            int ny0, ny1;
            window_inside(y0, size, H, &ny0, &ny1);
            for (j = 0; j < OW; ++j) {
                const int x0 = off + j * sx;
                int mx0, mx1;
                window_inside(x0, size, W, &mx0, &mx1);
                const int counter = (ny1 > ny0 ? ny1 - ny0 : 0) * (mx1 > mx0 ? mx1 - mx0 : 0);
                float share;
                if (counter == 0) continue;
                share = d[(ptrdiff_t)i * OW + j] / counter;
                for (n = ny0; n < ny1; ++n) {
                    float *row = g + (ptrdiff_t)(y0 + n) * W;
                    for (m = mx0; m < mx1; ++m) row[x0 + m] += share;
                }
            }
        }
    }
}
