#include "winograd.h"
#include "wide.h"

#ifndef PDN_WITH_ONEDNN

int pdn_winograd_built(void) { return 0; }

int pdn_winograd_applies(int C, int H, int W, int F, int kh, int kw, int OH, int OW, int sy,
                         int sx, int py, int px, int dil, int groups)
{
    (void)C; (void)H; (void)W; (void)F; (void)kh; (void)kw; (void)OH; (void)OW; (void)sy;
    (void)sx; (void)py; (void)px; (void)dil; (void)groups;
    return 0;
}

int pdn_winograd_conv3x3(const float *x, const float *w, float *out, int N, int C, int H,
                         int W, int F, int kh, int kw, int OH, int OW, int sy, int sx, int py,
                         int px, int dil, int groups)
{
    (void)x; (void)w; (void)out; (void)N; (void)C; (void)H; (void)W; (void)F; (void)kh;
    (void)kw; (void)OH; (void)OW; (void)sy; (void)sx; (void)py; (void)px; (void)dil;
    (void)groups;
    return PDN_WINOGRAD_DECLINED;
}

void pdn_winograd_clear_cache(void) {}

#else  /* PDN_WITH_ONEDNN */

#include <oneapi/dnnl/dnnl.h>
#include "onednn_conv.h"
#include <pthread.h>
#include "blas.h"       /* pdn_get_num_threads */
#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The transforms are written out below with these constants (Lavin and Gray's F(4x4, 3x3),
 * interpolation points 0, 1, -1, 2, -2 and infinity):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *          0 4 0 -5 0 1]                                          input:   B^T d B
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *                                                                  weights: G g G^T
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]  output:  A^T m A */
#define TILE 4
#define ALPHA 6
#define ELEMS 36

/* The transformed weights of a block of output channels are kept within WEIGHT_BYTES, the
 * transformed inputs and the products of a band of tile rows within BAND_BYTES each
 * (measured: 2 MB bands run yolov4-tiny's 104x104 layers 20% faster than 8 MB ones, 4 MB
 * blocks of weights the 26x26 ones as fast as 8 MB ones: closer to the caches). */
#define WEIGHT_BYTES ((size_t)4 << 20)
#define BAND_BYTES ((size_t)2 << 20)

/* Below this many output tiles per image the per-call weight transform and the tiles'
 * overlap cost more than the 4x fewer products save (measured with bench/forward_cpu.py:
 * 13x13 outputs lose, 26x26 win); below this many input channels the products are too
 * thin for the transforms to pay (yolov4's first layer, 3 channels: 9x slower). */
#define MIN_TILES 36
#define MIN_CHANNELS 16

int pdn_winograd_built(void) { return 1; }

int pdn_winograd_applies(int C, int H, int W, int F, int kh, int kw, int OH, int OW, int sy,
                         int sx, int py, int px, int dil, int groups)
{
    const int tiles = ((OH + TILE - 1) / TILE) * ((OW + TILE - 1) / TILE);
    return C >= MIN_CHANNELS && F > 0 && H > 0 && W > 0 && kh == 3 && kw == 3 && sy == 1 && sx == 1 &&
           dil == 1 && groups == 1 && py >= 0 && px >= 0 && py <= 2 && px <= 2 &&
           OH == H + 2 * py - 2 && OW == W + 2 * px - 2 && OH > 0 && OW > 0 &&
           tiles >= MIN_TILES;
}

/* ---- transforms ----------------------------------------------------------------------- */

/* B^T applied to six values (a column or a row of a 6x6 input tile). */
#define INPUT_T(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) do { \
        o0 = 4.f * (d0) - 5.f * (d2) + (d4);                          \
        o1 = -4.f * ((d1) + (d2)) + (d3) + (d4);                      \
        o2 = 4.f * ((d1) - (d2)) - (d3) + (d4);                       \
        o3 = 2.f * ((d3) - (d1)) - (d2) + (d4);                       \
        o4 = 2.f * ((d1) - (d3)) - (d2) + (d4);                       \
        o5 = 4.f * (d1) - 5.f * (d3) + (d5);                          \
    } while (0)

/* One tile row of one channel: the six input rows (zero-padded, `span` = 4 TW + 2 wide) in
 * rows, into v[e * e_stride + t] for the TW tiles t. tmp: 6 * span + 4 * (TW + 1) floats. */
PDN_WIDE512
static void input_tile_row(const float *rows, int span, int TW, float *tmp,
                           float *restrict v, ptrdiff_t e_stride)
{
    const float *r0 = rows, *r1 = r0 + span, *r2 = r1 + span, *r3 = r2 + span;
    const float *r4 = r3 + span, *r5 = r4 + span;
    float *restrict t0 = tmp, *restrict t1 = t0 + span, *restrict t2 = t1 + span;
    float *restrict t3 = t2 + span, *restrict t4 = t3 + span, *restrict t5 = t4 + span;
    float *restrict q0 = t5 + span, *restrict q1 = q0 + TW + 1, *restrict q2 = q1 + TW + 1;
    float *restrict q3 = q2 + TW + 1;
    int j, i, t;
    /* down the columns, all columns at once */
#pragma omp simd
    for (j = 0; j < span; ++j)
        INPUT_T(r0[j], r1[j], r2[j], r3[j], r4[j], r5[j], t0[j], t1[j], t2[j], t3[j], t4[j],
                t5[j]);
    /* then along each transformed row, tile by tile: tile t reads columns 4t..4t+5, i.e.
     * the four column phases q0..q3 at t and q0, q1 at t + 1 */
    for (i = 0; i < ALPHA; ++i) {
        const float *s = tmp + (ptrdiff_t)i * span;
        float *restrict o = v + (ptrdiff_t)i * ALPHA * e_stride;
        for (t = 0; t < TW; ++t) {
            q0[t] = s[TILE * t];
            q1[t] = s[TILE * t + 1];
            q2[t] = s[TILE * t + 2];
            q3[t] = s[TILE * t + 3];
        }
        q0[TW] = s[TILE * TW];
        q1[TW] = s[TILE * TW + 1];
#pragma omp simd
        for (t = 0; t < TW; ++t)
            INPUT_T(q0[t], q1[t], q2[t], q3[t], q0[t + 1], q1[t + 1], o[t], o[e_stride + t],
                    o[2 * e_stride + t], o[3 * e_stride + t], o[4 * e_stride + t],
                    o[5 * e_stride + t]);
    }
}

/* A^T applied to six values, four results. */
#define OUTPUT_T(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do { \
        const float p12 = (m1) + (m2), n12 = (m1) - (m2);    \
        const float p34 = (m3) + (m4), n34 = (m3) - (m4);    \
        o0 = (m0) + p12 + p34;                                \
        o1 = n12 + 2.f * n34;                                 \
        o2 = p12 + 4.f * p34;                                 \
        o3 = n12 + 8.f * n34 + (m5);                          \
    } while (0)

/* One tile row of one output channel: products m[e * e_stride + t] of the TW tiles into
 * four output rows rows[i * span + 4 t + j]. tmp: 4 * 6 * TW floats. */
PDN_WIDE512
static void output_tile_row(const float *m, ptrdiff_t e_stride, int TW, float *restrict tmp,
                            float *restrict rows, int span)
{
    int c, t, i;
    /* down the columns of the 6x6 products: tmp[(i * 6 + c) * TW + t] */
    for (c = 0; c < ALPHA; ++c) {
        const float *m0 = m + c * e_stride, *m1 = m0 + ALPHA * e_stride;
        const float *m2 = m1 + ALPHA * e_stride, *m3 = m2 + ALPHA * e_stride;
        const float *m4 = m3 + ALPHA * e_stride, *m5 = m4 + ALPHA * e_stride;
        float *restrict o0 = tmp + (ptrdiff_t)c * TW, *restrict o1 = o0 + ALPHA * TW;
        float *restrict o2 = o1 + ALPHA * TW, *restrict o3 = o2 + ALPHA * TW;
#pragma omp simd
        for (t = 0; t < TW; ++t)
            OUTPUT_T(m0[t], m1[t], m2[t], m3[t], m4[t], m5[t], o0[t], o1[t], o2[t], o3[t]);
    }
    /* then along the rows */
    for (i = 0; i < TILE; ++i) {
        const float *s = tmp + (ptrdiff_t)i * ALPHA * TW;
        float *restrict r = rows + (ptrdiff_t)i * span;
#pragma omp simd
        for (t = 0; t < TW; ++t)
            OUTPUT_T(s[t], s[TW + t], s[2 * TW + t], s[3 * TW + t], s[4 * TW + t],
                     s[5 * TW + t], r[TILE * t], r[TILE * t + 1], r[TILE * t + 2],
                     r[TILE * t + 3]);
    }
}

/* G applied to three values, six results. */
#define WEIGHT_T(g0, g1, g2, o0, o1, o2, o3, o4, o5) do {          \
        const float s02 = (g0) + (g2);                              \
        o0 = (g0) * (1.f / 4.f);                                    \
        o1 = -(s02 + (g1)) * (1.f / 6.f);                           \
        o2 = -(s02 - (g1)) * (1.f / 6.f);                           \
        o3 = (g0) * (1.f / 24.f) + (g1) * (1.f / 12.f) + (g2) * (1.f / 6.f); \
        o4 = (g0) * (1.f / 24.f) - (g1) * (1.f / 12.f) + (g2) * (1.f / 6.f); \
        o5 = (g2);                                                  \
    } while (0)

/* The weights of one output channel for all C inputs, w[c * 9 + 3 i + j], into
 * u[e * e_stride + c]. g: 27 * C floats (the weights regrouped so that C runs inner, then
 * G g). */
PDN_WIDE512
static void weight_row(const float *w, int C, float *restrict g, float *restrict u,
                       ptrdiff_t e_stride)
{
    float *restrict t = g + 9 * (ptrdiff_t)C;
    int c, k, i;
    for (c = 0; c < C; ++c)
        for (k = 0; k < 9; ++k) g[(ptrdiff_t)k * C + c] = w[(ptrdiff_t)c * 9 + k];
    for (k = 0; k < 3; ++k) {        /* G g, down each of the three columns: t[i][k] */
        const float *g0 = g + (ptrdiff_t)k * C, *g1 = g0 + 3 * (ptrdiff_t)C;
        const float *g2 = g1 + 3 * (ptrdiff_t)C;
        float *o = t + (ptrdiff_t)k * C;
        const ptrdiff_t d = 3 * (ptrdiff_t)C;
#pragma omp simd
        for (c = 0; c < C; ++c)
            WEIGHT_T(g0[c], g1[c], g2[c], o[c], o[d + c], o[2 * d + c], o[3 * d + c],
                     o[4 * d + c], o[5 * d + c]);
    }
    for (i = 0; i < ALPHA; ++i) {    /* then (G g) G^T along each row */
        const float *s0 = t + (ptrdiff_t)i * 3 * C, *s1 = s0 + C, *s2 = s1 + C;
        float *o = u + (ptrdiff_t)i * ALPHA * e_stride;
#pragma omp simd
        for (c = 0; c < C; ++c)
            WEIGHT_T(s0[c], s1[c], s2[c], o[c], o[e_stride + c], o[2 * e_stride + c],
                     o[3 * e_stride + c], o[4 * e_stride + c], o[5 * e_stride + c]);
    }
}

/* ---- the 36 matrix products: oneDNN matmul, one primitive per shape -------------------- */

typedef struct pdn_wmm {
    int M, K, N;                   /* [36, M, K] x [36, K, N] -> [36, M, N], all row-major */
    int threads;                   /* OpenMP threads when built (oneDNN fixes its work split) */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, scratch;
    size_t scratch_bytes;
    struct pdn_wmm *next;
} pdn_wmm;

static pthread_mutex_t pdn_wino_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_stream_t pdn_wino_stream = NULL;
static pdn_wmm *pdn_wmm_cache = NULL;

static void wmm_free(pdn_wmm *p)
{
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->a) dnnl_memory_destroy(p->a);
    if (p->b) dnnl_memory_destroy(p->b);
    if (p->c) dnnl_memory_destroy(p->c);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    free(p);
}

static pdn_wmm *wmm_build(int M, int K, int N)
{
    dnnl_engine_t engine = pdn_onednn_engine();
    dnnl_dims_t ad = {ELEMS, M, K}, bd = {ELEMS, K, N}, cd = {ELEMS, M, N};
    dnnl_memory_desc_t amd = NULL, bmd = NULL, cmd = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    pdn_wmm *p = (pdn_wmm *)calloc(1, sizeof(*p));
    int ok = p != NULL;
    if (!ok) return NULL;
    p->M = M; p->K = K; p->N = N;
    p->threads = pdn_get_num_threads();
    ok = dnnl_memory_desc_create_with_tag(&amd, 3, ad, dnnl_f32, dnnl_abc) == dnnl_success &&
         dnnl_memory_desc_create_with_tag(&bmd, 3, bd, dnnl_f32, dnnl_abc) == dnnl_success &&
         dnnl_memory_desc_create_with_tag(&cmd, 3, cd, dnnl_f32, dnnl_abc) == dnnl_success &&
         dnnl_primitive_attr_create(&attr) == dnnl_success &&
         dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ==
             dnnl_success &&
         dnnl_matmul_primitive_desc_create(&pd, engine, amd, bmd, NULL, cmd, attr) ==
             dnnl_success &&
         dnnl_primitive_create(&p->prim, pd) == dnnl_success &&
         dnnl_memory_create(&p->a, amd, engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->b, bmd, engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->c, cmd, engine, DNNL_MEMORY_NONE) == dnnl_success;
    if (ok) {
        const_dnnl_memory_desc_t smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md,
                                                                    0);
        p->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        if (p->scratch_bytes)
            ok = dnnl_memory_create(&p->scratch, smd, engine, DNNL_MEMORY_NONE) ==
                 dnnl_success;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (amd) dnnl_memory_desc_destroy(amd);
    if (bmd) dnnl_memory_desc_destroy(bmd);
    if (cmd) dnnl_memory_desc_destroy(cmd);
    if (!ok) {
        wmm_free(p);
        return NULL;
    }
    return p;
}

static pdn_wmm *wmm_get(int M, int K, int N)
{
    pdn_wmm *p;
    for (p = pdn_wmm_cache; p; p = p->next)
        if (p->M == M && p->K == K && p->N == N && p->threads == pdn_get_num_threads()) return p;
    p = wmm_build(M, K, N);
    if (p) {
        p->next = pdn_wmm_cache;
        pdn_wmm_cache = p;
    }
    return p;
}

static int wmm_run(pdn_wmm *p, const float *a, const float *b, float *c, void *scratch)
{
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b},
                               {DNNL_ARG_DST, p->c}, {DNNL_ARG_SCRATCHPAD, p->scratch}};
    dnnl_memory_set_data_handle(p->a, (void *)a);
    dnnl_memory_set_data_handle(p->b, (void *)b);
    dnnl_memory_set_data_handle(p->c, c);
    if (p->scratch) dnnl_memory_set_data_handle(p->scratch, scratch);
    if (dnnl_primitive_execute(p->prim, pdn_wino_stream, p->scratch ? 4 : 3, args) !=
        dnnl_success)
        return -1;
    return dnnl_stream_wait(pdn_wino_stream) == dnnl_success ? 0 : -1;
}

/* ---- the convolution ------------------------------------------------------------------- */

/* Grow-only buffers shared by all layers (like Darknet's workspace), within the sizes above
 * but the matmul's scratchpad: faulting fresh pages in at every call costs
 * about as much as the products themselves. */
enum { BUF_U, BUF_V, BUF_M, BUF_SCRATCH, BUF_THREADS, BUF_COUNT };
static void *pdn_wbuf[BUF_COUNT];
static size_t pdn_wbuf_size[BUF_COUNT];

static void *buf_get(int which, size_t bytes)
{
    if (bytes > pdn_wbuf_size[which]) {
        void *p = NULL;
        free(pdn_wbuf[which]);
        pdn_wbuf[which] = NULL;
        pdn_wbuf_size[which] = 0;
        if (posix_memalign(&p, 64, bytes) != 0) return NULL;
        pdn_wbuf[which] = p;
        pdn_wbuf_size[which] = bytes;
    }
    return pdn_wbuf[which];
}

/* Each OpenMP thread's own floats_each floats, in one of those buffers (index it with
 * THREAD_ID() inside a parallel region). */
static float *per_thread(size_t floats_each)
{
    return (float *)buf_get(BUF_THREADS, (size_t)pdn_get_num_threads() * floats_each * sizeof(float));
}

typedef struct {
    int C, H, W, F, OH, OW, py, px;
    int TH, TW, span;              /* tile rows / columns, padded input row width */
    int Fb, rows;                  /* output channels per block, tile rows per chunk */
} pdn_wplan;

static void plan_sizes(pdn_wplan *p)
{
    const size_t per_elem = (size_t)ELEMS * sizeof(float);
    size_t fb, rows;
    p->TH = (p->OH + TILE - 1) / TILE;
    p->TW = (p->OW + TILE - 1) / TILE;
    p->span = TILE * p->TW + 2;
    /* transformed weights of a block of output channels within the budget (multiples of 16
     * for the matrix kernels), then tile rows so that the inputs and products fit too */
    fb = WEIGHT_BYTES / (per_elem * (size_t)p->C);
    fb = fb >= 16 ? fb / 16 * 16 : 16;
    p->Fb = fb >= (size_t)p->F ? p->F : (int)fb;
    rows = BAND_BYTES / (per_elem * (size_t)(p->C > p->Fb ? p->C : p->Fb) * p->TW);
    /* a small image in one band (up to WEIGHT_BYTES) when the weights take several blocks:
     * its inputs are then transformed once, not once per block */
    if (p->Fb < p->F && per_elem * (size_t)(p->C > p->Fb ? p->C : p->Fb) * p->TW * p->TH <=
                            WEIGHT_BYTES)
        rows = p->TH;
    if (rows < 1) rows = 1;
    p->rows = rows >= (size_t)p->TH ? p->TH : (int)rows;
}

/* The input rows y0..y0+5 of channel xc, zero-padded: rows[r * span + j] = x[y0 + r][j - px]. */
static void load_rows(const float *xc, const pdn_wplan *p, int y0, float *rows)
{
    int r;
    for (r = 0; r < ALPHA; ++r) {
        const int y = y0 + r;
        float *d = rows + (ptrdiff_t)r * p->span;
        if (y < 0 || y >= p->H) {
            memset(d, 0, (size_t)p->span * sizeof(float));
        } else {
            const int right = p->span - p->px - p->W;    /* >= 0: span covers OW + 2 */
            memset(d, 0, (size_t)p->px * sizeof(float));
            memcpy(d + p->px, xc + (ptrdiff_t)y * p->W, (size_t)p->W * sizeof(float));
            if (right > 0) memset(d + p->px + p->W, 0, (size_t)right * sizeof(float));
        }
    }
}

/* The weights of output channels f0..f0+fb-1: u[e][f][c]. */
static int transform_weights(const pdn_wplan *p, const float *w, int f0, int fb, float *u)
{
    const size_t each = (size_t)27 * p->C;
    float *g = per_thread(each);
    int f;
    if (!g) return -2;
#pragma omp parallel for schedule(static)
    for (f = 0; f < fb; ++f)
        weight_row(w + (ptrdiff_t)(f0 + f) * p->C * 9, p->C, g + THREAD_ID() * each,
                   u + (ptrdiff_t)f * p->C, (ptrdiff_t)fb * p->C);
    return 0;
}

/* The input tiles of tile rows ty0..ty0+nrows-1 of one image: v[e][c][t]. */
static int transform_inputs(const pdn_wplan *p, const float *x, int ty0, int nrows, float *v)
{
    const int tiles = nrows * p->TW;
    const size_t each = (size_t)p->span * 2 * ALPHA + 4 * ((size_t)p->TW + 1);
    float *all = per_thread(each);
    int idx;
    if (!all) return -2;
#pragma omp parallel for schedule(static)
    for (idx = 0; idx < p->C * nrows; ++idx) {
        const int c = idx / nrows, r = idx % nrows;
        float *rows = all + THREAD_ID() * each;
        load_rows(x + (ptrdiff_t)c * p->H * p->W, p, (ty0 + r) * TILE - p->py, rows);
        input_tile_row(rows, p->span, p->TW, rows + (ptrdiff_t)ALPHA * p->span,
                       v + (ptrdiff_t)c * tiles + (ptrdiff_t)r * p->TW,
                       (ptrdiff_t)p->C * tiles);
    }
    return 0;
}

/* The products m[e][f][t] = sum_c u[e][f][c] v[e][c][t] of those tile rows and output
 * channels f0..f0+fb-1, and their output rows of one image. */
static int products_outputs(const pdn_wplan *p, const float *u, const float *v, int f0,
                            int fb, int ty0, int nrows, float *m, float *out)
{
    const int tiles = nrows * p->TW;
    pdn_wmm *mm = wmm_get(fb, p->C, tiles);
    void *scratch;
    if (!mm) return -1;
    scratch = mm->scratch_bytes ? buf_get(BUF_SCRATCH, mm->scratch_bytes) : NULL;
    if (mm->scratch_bytes && !scratch) return -2;
    if (wmm_run(mm, u, v, m, scratch)) return -1;
    {
        const size_t each = (size_t)TILE * ALPHA * p->TW + (size_t)TILE * p->span;
        float *all = per_thread(each);
        int idx;
        if (!all) return -2;
#pragma omp parallel for schedule(static)
        for (idx = 0; idx < fb * nrows; ++idx) {
            const int f = idx / nrows, r = idx % nrows, oy = (ty0 + r) * TILE;
            float *buf = all + THREAD_ID() * each;
            float *rows = buf + (ptrdiff_t)TILE * ALPHA * p->TW;
            float *o = out + ((ptrdiff_t)(f0 + f) * p->OH + oy) * p->OW;
            int i;
            output_tile_row(m + (ptrdiff_t)f * tiles + (ptrdiff_t)r * p->TW,
                            (ptrdiff_t)fb * tiles, p->TW, buf, rows, p->span);
            for (i = 0; i < TILE && oy + i < p->OH; ++i)
                memcpy(o + (ptrdiff_t)i * p->OW, rows + (ptrdiff_t)i * p->span,
                       (size_t)p->OW * sizeof(float));
        }
    }
    return 0;
}

int pdn_winograd_conv3x3(const float *x, const float *w, float *out, int N, int C, int H,
                         int W, int F, int kh, int kw, int OH, int OW, int sy, int sx, int py,
                         int px, int dil, int groups)
{
    pdn_wplan p = {C, H, W, F, OH, OW, py, px, 0, 0, 0, 0, 0};
    const ptrdiff_t in = (ptrdiff_t)C * H * W, on = (ptrdiff_t)F * OH * OW;
    float *u, *v, *m;
    int f0, n, ty0, blocks, rc = 0;
    if (N < 1 ||
        !pdn_winograd_applies(C, H, W, F, kh, kw, OH, OW, sy, sx, py, px, dil, groups))
        return PDN_WINOGRAD_DECLINED;
    plan_sizes(&p);
    blocks = (F + p.Fb - 1) / p.Fb;
    pthread_mutex_lock(&pdn_wino_lock);
    u = (float *)buf_get(BUF_U, (size_t)ELEMS * p.Fb * C * sizeof(float));
    v = (float *)buf_get(BUF_V, (size_t)ELEMS * C * p.rows * p.TW * sizeof(float));
    m = (float *)buf_get(BUF_M, (size_t)ELEMS * p.Fb * p.rows * p.TW * sizeof(float));
    if (!u || !v || !m) rc = -2;
    else if (!pdn_onednn_stream(&pdn_wino_stream)) rc = -1;
    if (rc == 0 && blocks > 1 && p.rows == p.TH &&
        (double)(N - 1) * F < (double)(blocks - 1) * N * p.TH * p.TW) {
        /* an image's tiles fit at once and there are several blocks of output channels:
         * each image's inputs transformed once, the weights once per image */
        for (n = 0; rc == 0 && n < N; ++n) {
            rc = transform_inputs(&p, x + n * in, 0, p.TH, v);
            for (f0 = 0; rc == 0 && f0 < F; f0 += p.Fb) {
                const int fb = f0 + p.Fb <= F ? p.Fb : F - f0;
                rc = transform_weights(&p, w, f0, fb, u);
                if (rc == 0) rc = products_outputs(&p, u, v, f0, fb, 0, p.TH, m, out + n * on);
            }
        }
    } else {
        /* the weights transformed once, the inputs once per block of output channels */
        for (f0 = 0; rc == 0 && f0 < F; f0 += p.Fb) {
            const int fb = f0 + p.Fb <= F ? p.Fb : F - f0;
            rc = transform_weights(&p, w, f0, fb, u);
            for (n = 0; rc == 0 && n < N; ++n)
                for (ty0 = 0; rc == 0 && ty0 < p.TH; ty0 += p.rows) {
                    const int nrows = ty0 + p.rows <= p.TH ? p.rows : p.TH - ty0;
                    rc = transform_inputs(&p, x + n * in, ty0, nrows, v);
                    if (rc == 0)
                        rc = products_outputs(&p, u, v, f0, fb, ty0, nrows, m, out + n * on);
                }
        }
    }
    pthread_mutex_unlock(&pdn_wino_lock);
    return rc;
}

void pdn_winograd_clear_cache(void)
{
    int i;
    pthread_mutex_lock(&pdn_wino_lock);
    while (pdn_wmm_cache) {
        pdn_wmm *p = pdn_wmm_cache;
        pdn_wmm_cache = p->next;
        wmm_free(p);
    }
    for (i = 0; i < BUF_COUNT; ++i) {
        free(pdn_wbuf[i]);
        pdn_wbuf[i] = NULL;
        pdn_wbuf_size[i] = 0;
    }
    pthread_mutex_unlock(&pdn_wino_lock);
}

#endif  /* PDN_WITH_ONEDNN */
