#include "onednn_conv.h"

#ifndef PDN_WITH_ONEDNN

int pdn_onednn_built(void) { return 0; }

int pdn_onednn_conv2d(const float *x, const float *w, float *out,
                      int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
                      int sy, int sx, int py, int px, int dil, int groups)
{
    (void)x; (void)w; (void)out; (void)N; (void)C; (void)H; (void)W; (void)F; (void)kh;
    (void)kw; (void)OH; (void)OW; (void)sy; (void)sx; (void)py; (void)px; (void)dil;
    (void)groups;
    return PDN_ONEDNN_UNAVAILABLE;
}

int pdn_onednn_conv2d_backward(const float *x, const float *w, const float *delta, float *dx,
                               float *dw, int N, int C, int H, int W, int F, int kh, int kw,
                               int OH, int OW, int sy, int sx, int py, int px, int dil,
                               int groups)
{
    (void)x; (void)w; (void)delta; (void)dx; (void)dw; (void)N; (void)C; (void)H; (void)W;
    (void)F; (void)kh; (void)kw; (void)OH; (void)OW; (void)sy; (void)sx; (void)py; (void)px;
    (void)dil; (void)groups;
    return PDN_ONEDNN_UNAVAILABLE;
}

int pdn_onednn_conv2d_inference(const float *x, const float *w, float *out,
                                int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                int OW, int sy, int sx, int py, int px, int dil, int groups,
                                const float *scale, const float *mean, const float *var,
                                const float *bias, float eps, int act)
{
    (void)x; (void)w; (void)out; (void)N; (void)C; (void)H; (void)W; (void)F; (void)kh;
    (void)kw; (void)OH; (void)OW; (void)sy; (void)sx; (void)py; (void)px; (void)dil;
    (void)groups; (void)scale; (void)mean; (void)var; (void)bias; (void)eps; (void)act;
    return PDN_ONEDNN_UNAVAILABLE;
}

int pdn_onednn_conv2d_supported(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                int OW, int sy, int sx, int py, int px, int dil, int groups,
                                int act)
{
    (void)N; (void)C; (void)H; (void)W; (void)F; (void)kh; (void)kw; (void)OH; (void)OW;
    (void)sy; (void)sx; (void)py; (void)px; (void)dil; (void)groups; (void)act;
    return PDN_ONEDNN_UNAVAILABLE;
}

const char *pdn_onednn_conv2d_impl(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                   int OW, int sy, int sx, int py, int px, int dil, int groups,
                                   int act)
{
    (void)N; (void)C; (void)H; (void)W; (void)F; (void)kh; (void)kw; (void)OH; (void)OW;
    (void)sy; (void)sx; (void)py; (void)px; (void)dil; (void)groups; (void)act;
    return "";
}

void pdn_onednn_clear_cache(void) {}

#else  /* PDN_WITH_ONEDNN */

#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include "activations.h"
#include "blas.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- geometry ------------------------------------------------------------------------- */

typedef struct {
    int N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px, dil, groups;
} pdn_geo;

/* Darknet pads py/px on the top/left and takes OH/OW from its own formula; the bottom/right
 * padding that gives oneDNN the same OH/OW reads exactly the rows Darknet's im2col reads
 * (beyond the image both are zeros). When the last window ends inside the image that
 * padding is negative: 0 then gives the same OH/OW too as long as the unread rows are fewer
 * than a stride (oneDNN rounds the output size down); otherwise it stays negative and the
 * geometry goes to the fallback. */
static int pad_right(int in, int out, int k, int s, int pl, int dil)
{
    int pr = (out - 1) * s + (k - 1) * dil + 1 - in - pl;
    return pr < 0 && pr + s - 1 >= 0 ? 0 : pr;
}

static int geo_valid(const pdn_geo *g)
{
    return g->N > 0 && g->C > 0 && g->H > 0 && g->W > 0 && g->F > 0 && g->kh > 0 &&
           g->kw > 0 && g->OH > 0 && g->OW > 0 && g->sy > 0 && g->sx > 0 && g->py >= 0 &&
           g->px >= 0 && g->dil > 0 && g->groups > 0 && g->C % g->groups == 0 &&
           g->F % g->groups == 0 &&
           pad_right(g->H, g->OH, g->kh, g->sy, g->py, g->dil) >= 0 &&
           pad_right(g->W, g->OW, g->kw, g->sx, g->px, g->dil) >= 0;
}

/* ---- engine, stream, shared buffers ----------------------------------------------------- */

static pthread_mutex_t pdn_dnnl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pdn_engine_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t pdn_engine = NULL;
static dnnl_stream_t pdn_stream = NULL;

dnnl_engine_t pdn_onednn_engine(void)
{
    pthread_mutex_lock(&pdn_engine_lock);
    if (!pdn_engine && dnnl_engine_create(&pdn_engine, dnnl_cpu, 0) != dnnl_success)
        pdn_engine = NULL;
    pthread_mutex_unlock(&pdn_engine_lock);
    return pdn_engine;
}

int pdn_onednn_stream(dnnl_stream_t *stream)
{
    dnnl_engine_t engine;
    if (*stream) return 1;
    engine = pdn_onednn_engine();
    if (!engine || dnnl_stream_create(stream, engine, dnnl_stream_default_flags) !=
                       dnnl_success) {
        *stream = NULL;
        return 0;
    }
    return 1;
}

/* Grow-only buffers shared by all layers (like Darknet's workspace): the blocked copies of
 * src / weights / dst, the gradients before they are added, the scratchpad, and the weight
 * gradient summed over a call's chunks in oneDNN's layout (added to dw once per call). */
enum { SLOT_SRC, SLOT_WEI, SLOT_DST, SLOT_GRAD, SLOT_SCRATCH, SLOT_DW_SUM, SLOT_COUNT };
static void *pdn_slot[SLOT_COUNT];
static size_t pdn_slot_size[SLOT_COUNT];

/* Buffers above this are freed once they go unused for a few calls: kept, the conversions
 * of the largest layers would stay on top of the network's own peak; freed after every call,
 * each call would page-fault its buffers in anew (a training iteration's early layers run
 * one after the other, forward and backward, and reuse them). */
#define PDN_SLOT_KEEP_BYTES ((size_t)1 << 22)
#define PDN_SLOT_IDLE_CALLS 3
static int pdn_slot_idle[SLOT_COUNT];      /* calls since the buffer was last used */
static int pdn_slot_used[SLOT_COUNT];      /* used by the current call */

/* Those large ones are mapped and unmapped directly: through malloc, each free raises glibc's
 * dynamic mmap threshold, later large allocations (numpy's too) come from the heap, and the
 * fragmented heap makes the resident size grow call after call. */
static void *slot_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes > PDN_SLOT_KEEP_BYTES) {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

static void slot_free(int slot)
{
    if (pdn_slot[slot]) {
        if (pdn_slot_size[slot] > PDN_SLOT_KEEP_BYTES)
            munmap(pdn_slot[slot], pdn_slot_size[slot]);
        else
            free(pdn_slot[slot]);
    }
    pdn_slot[slot] = NULL;
    pdn_slot_size[slot] = 0;
}

static void *slot_get(int slot, size_t bytes)
{
    if (bytes == 0) bytes = 64;
    pdn_slot_used[slot] = 1;
    if (bytes > pdn_slot_size[slot]) {
        slot_free(slot);
        pdn_slot[slot] = slot_alloc(bytes);
        if (!pdn_slot[slot]) return NULL;
        pdn_slot_size[slot] = bytes;
    }
    return pdn_slot[slot];
}

/* At the end of each call: frees the large buffers that went unused for a few calls. */
static void slots_trim(void)
{
    int i;
    for (i = 0; i < SLOT_COUNT; ++i) {
        pdn_slot_idle[i] = pdn_slot_used[i] ? 0 : pdn_slot_idle[i] + 1;
        pdn_slot_used[i] = 0;
        if (pdn_slot_size[i] > PDN_SLOT_KEEP_BYTES && pdn_slot_idle[i] > PDN_SLOT_IDLE_CALLS)
            slot_free(i);
    }
}

static int engine_ready(void) { return pdn_onednn_stream(&pdn_stream); }

/* ---- ports: a primitive's argument and its conversion from / to the caller's NCHW -------- */

typedef struct {
    dnnl_memory_desc_t prim_md;    /* the layout the primitive wants (owned clone) */
    dnnl_primitive_t reorder;      /* NULL: the primitive reads / writes the caller's buffer */
    dnnl_memory_t user_mem, prim_mem;
    int slot;
} pdn_port;

static void port_free(pdn_port *p)
{
    if (p->reorder) dnnl_primitive_destroy(p->reorder);
    if (p->user_mem) dnnl_memory_destroy(p->user_mem);
    if (p->prim_mem) dnnl_memory_destroy(p->prim_mem);
    if (p->prim_md) dnnl_memory_desc_destroy(p->prim_md);
    memset(p, 0, sizeof(*p));
}

/* to_prim: the caller's buffer is converted into the primitive's layout before it runs;
 * else the primitive's result is converted into the caller's buffer after, added to what
 * is there when accumulate (a reorder with a sum post-op). */
static int port_init(pdn_port *p, const_dnnl_memory_desc_t user_md,
                     const_dnnl_memory_desc_t prim_md, int to_prim, int accumulate, int slot)
{
    memset(p, 0, sizeof(*p));
    p->slot = slot;
    if (dnnl_memory_desc_clone(&p->prim_md, prim_md) != dnnl_success) return -1;
    if (dnnl_memory_create(&p->user_mem, user_md, pdn_engine, DNNL_MEMORY_NONE) != dnnl_success)
        return -1;
    if (dnnl_memory_create(&p->prim_mem, prim_md, pdn_engine, DNNL_MEMORY_NONE) != dnnl_success)
        return -1;
    if (accumulate || !dnnl_memory_desc_equal(user_md, prim_md)) {
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_primitive_attr_t attr = NULL;
        dnnl_status_t st = dnnl_primitive_attr_create(&attr);
        if (st == dnnl_success && accumulate) {
            dnnl_post_ops_t ops = NULL;
            st = dnnl_post_ops_create(&ops);
            if (st == dnnl_success)
                st = dnnl_post_ops_append_sum(ops, 1.f, 0, dnnl_data_type_undef);
            if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, ops);
            if (ops) dnnl_post_ops_destroy(ops);
        }
        if (st == dnnl_success)
            st = to_prim ? dnnl_reorder_primitive_desc_create(&rpd, user_md, pdn_engine, prim_md,
                                                              pdn_engine, attr)
                         : dnnl_reorder_primitive_desc_create(&rpd, prim_md, pdn_engine, user_md,
                                                              pdn_engine, attr);
        if (st == dnnl_success) st = dnnl_primitive_create(&p->reorder, rpd);
        if (rpd) dnnl_primitive_desc_destroy(rpd);
        if (attr) dnnl_primitive_attr_destroy(attr);
        if (st != dnnl_success) {
            p->reorder = NULL;
            return -1;
        }
    }
    return 0;
}

static int reorder_run(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return dnnl_primitive_execute(r, pdn_stream, 2, args) == dnnl_success ? 0 : -1;
}

/* The memory the primitive reads for the caller's buffer ptr (converted when needed). */
static dnnl_memory_t port_in(pdn_port *p, const void *ptr, int *rc)
{
    dnnl_memory_set_data_handle(p->user_mem, (void *)ptr);
    if (!p->reorder) return p->user_mem;
    {
        void *buf = slot_get(p->slot, dnnl_memory_desc_get_size(p->prim_md));
        if (!buf) { *rc = -2; return p->prim_mem; }
        dnnl_memory_set_data_handle(p->prim_mem, buf);
        if (reorder_run(p->reorder, p->user_mem, p->prim_mem)) *rc = -1;
    }
    return p->prim_mem;
}

/* port_in for an operand that is the same for every chunk of a call (the weights): converted
 * by the call's first chunk; later chunks whose primitive wants the same layout read that
 * copy, still in the port's slot. *done: the layout converted so far (NULL at the start). */
static dnnl_memory_t port_in_once(pdn_port *p, const void *ptr, const_dnnl_memory_desc_t *done,
                                  int *rc)
{
    if (p->reorder && *done && dnnl_memory_desc_equal(*done, p->prim_md)) {
        void *buf = slot_get(p->slot, dnnl_memory_desc_get_size(p->prim_md));
        if (!buf) { *rc = -2; return p->prim_mem; }
        dnnl_memory_set_data_handle(p->prim_mem, buf);
        return p->prim_mem;
    }
    *done = p->reorder ? p->prim_md : NULL;
    return port_in(p, ptr, rc);
}

/* The memory the primitive writes for the caller's buffer ptr; port_out_end converts it. */
static dnnl_memory_t port_out(pdn_port *p, void *ptr, int *rc)
{
    dnnl_memory_set_data_handle(p->user_mem, ptr);
    if (!p->reorder) return p->user_mem;
    {
        void *buf = slot_get(p->slot, dnnl_memory_desc_get_size(p->prim_md));
        if (!buf) { *rc = -2; return p->prim_mem; }
        dnnl_memory_set_data_handle(p->prim_mem, buf);
    }
    return p->prim_mem;
}

static void port_out_end(pdn_port *p, int *rc)
{
    if (p->reorder && *rc == 0 && reorder_run(p->reorder, p->prim_mem, p->user_mem)) *rc = -1;
}

/* ---- cached primitives, one entry per geometry and direction ----------------------------- */

enum { DIR_FWD, DIR_BWD, DIR_BWD_NO_DX, DIR_FWD_FUSED };

typedef struct pdn_entry {
    pdn_geo geo;
    int dir;
    int threads;                   /* OpenMP threads when built: oneDNN fixes some kernels'
                                    * work split then, so a new count takes new primitives */
    int fuse_bn, fuse_act;         /* DIR_FWD_FUSED: batch norm or bias, activation code */
    int declined;                  /* oneDNN could not make it: the fallback runs */
    /* forward, or backward-weights */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    pdn_port src, wei, dst;        /* fwd: x, w, out; bwd-weights: x, dw (+=), delta */
    /* backward-data (DIR_BWD only) */
    dnnl_primitive_desc_t pd_data;
    dnnl_primitive_t prim_data;
    pdn_port d_wei, d_dst, d_src;  /* w, delta, dx (+=) */
    dnnl_memory_t scratch;
    /* DIR_FWD_FUSED: the per-channel post-op operands (mean, 1/sd, scale, bias or bias) */
    int n_channel_ops;
    dnnl_memory_t channel_op[4];
    float *inv_sd;
    char impl[64];
    struct pdn_entry *next;
} pdn_entry;

static pdn_entry *pdn_cache = NULL;

static void entry_free(pdn_entry *e)
{
    port_free(&e->src); port_free(&e->wei); port_free(&e->dst);
    port_free(&e->d_wei); port_free(&e->d_dst); port_free(&e->d_src);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    if (e->prim_data) dnnl_primitive_destroy(e->prim_data);
    if (e->pd_data) dnnl_primitive_desc_destroy(e->pd_data);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    {
        int i;
        for (i = 0; i < 4; ++i)
            if (e->channel_op[i]) dnnl_memory_destroy(e->channel_op[i]);
    }
    free(e->inv_sd);
    free(e);
}

/* The caller's layouts (plain NCHW / OIHW / GOIHW) and "any" (oneDNN picks). */
typedef struct {
    dnnl_memory_desc_t src, wei, dst, src_any, wei_any, dst_any, src_blk, dst_blk;
} pdn_mds;

static void mds_free(pdn_mds *m)
{
    dnnl_memory_desc_t *all[8] = {&m->src, &m->wei, &m->dst, &m->src_any, &m->wei_any,
                                  &m->dst_any, &m->src_blk, &m->dst_blk};
    int i;
    for (i = 0; i < 8; ++i)
        if (*all[i]) dnnl_memory_desc_destroy(*all[i]);
}

/* The channel block of oneDNN's JIT convolutions on this CPU: 16 floats with AVX-512, 8 below
 * (AVX2, SSE4.1). Blocks of 16 on an AVX2 machine leave only oneDNN's reference
 * convolution, about a thousand times slower. */
static int channel_block(void)
{
    static int block;
    if (!block) {
        const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
        block = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? 16 : 8;
    }
    return block;
}

static int mds_init(pdn_mds *m, const pdn_geo *g)
{
    const dnnl_format_tag_t blk = channel_block() == 16 ? dnnl_aBcd16b : dnnl_aBcd8b;
    dnnl_dims_t sd = {g->N, g->C, g->H, g->W}, dd = {g->N, g->F, g->OH, g->OW};
    dnnl_dims_t wd = {g->F, g->C, g->kh, g->kw};
    int wn = 4;
    dnnl_format_tag_t wtag = dnnl_oihw;
    int ok;
    memset(m, 0, sizeof(*m));
    if (g->groups > 1) {
        wd[0] = g->groups; wd[1] = g->F / g->groups; wd[2] = g->C / g->groups;
        wd[3] = g->kh; wd[4] = g->kw;
        wn = 5;
        wtag = dnnl_goihw;
    }
    ok = dnnl_memory_desc_create_with_tag(&m->src, 4, sd, dnnl_f32, dnnl_nchw) == dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->dst, 4, dd, dnnl_f32, dnnl_nchw) == dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->wei, wn, wd, dnnl_f32, wtag) == dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->src_any, 4, sd, dnnl_f32, dnnl_format_tag_any) ==
             dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any) ==
             dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->wei_any, wn, wd, dnnl_f32, dnnl_format_tag_any) ==
             dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->src_blk, 4, sd, dnnl_f32, blk) == dnnl_success &&
         dnnl_memory_desc_create_with_tag(&m->dst_blk, 4, dd, dnnl_f32, blk) == dnnl_success;
    return ok ? 0 : -1;
}

static void set_impl(pdn_entry *e, const_dnnl_primitive_desc_t pd)
{
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
        name) {
        strncpy(e->impl, name, sizeof(e->impl) - 1);
        e->impl[sizeof(e->impl) - 1] = 0;
    }
}

/* oneDNN's reference kernels (plain loops, ~1000 times slower than its JIT ones and far
 * slower than im2col + sgemm) are what it falls back to for a layout or geometry no JIT
 * kernel of this CPU takes. */
static int is_reference(const_dnnl_primitive_desc_t pd)
{
    const char *name = NULL;
    return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
           name && strncmp(name, "ref", 3) == 0;
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd)
{
    const_dnnl_memory_desc_t md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* Darknet's activation as oneDNN's eltwise algorithm, where they compute the same function
 * (mish: Darknet's softplus threshold only changes values below float resolution; leaky:
 * the same .1f * x): 1 and the algorithm / alpha, 0 for linear, -1 when not fusable. */
static int eltwise_of(int code, dnnl_alg_kind_t *alg, float *alpha)
{
    *alpha = 0.f;
    switch (code) {
    case PDN_LINEAR: return 0;
    case PDN_LOGISTIC: *alg = dnnl_eltwise_logistic; return 1;
    case PDN_RELU: *alg = dnnl_eltwise_relu; return 1;
    case PDN_REVLEAKY:                 /* forward as leaky, as in Darknet */
    case PDN_LEAKY: *alg = dnnl_eltwise_relu; *alpha = .1f; return 1;
    case PDN_SWISH: *alg = dnnl_eltwise_swish; *alpha = 1.f; return 1;
    case PDN_MISH: *alg = dnnl_eltwise_mish; return 1;
    default: return -1;
    }
}

/* Inference: the batch norm as Darknet writes it, (x - mean) * (1 / sd) * scale + bias, or
 * the bias alone, then the activation, all inside the convolution's kernel. */
static int fused_attr(pdn_entry *e, dnnl_primitive_attr_t attr)
{
    const int F = e->geo.F;
    dnnl_dims_t cd = {1, F, 1, 1};
    dnnl_memory_desc_t cmd = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_alg_kind_t ops_alg[4] = {dnnl_binary_sub, dnnl_binary_mul, dnnl_binary_mul,
                                  dnnl_binary_add};
    dnnl_alg_kind_t act = dnnl_alg_kind_undef;
    float alpha;
    int fuse = eltwise_of(e->fuse_act, &act, &alpha), i, rc = -1;
    if (fuse < 0) return -1;
    if (dnnl_memory_desc_create_with_tag(&cmd, 4, cd, dnnl_f32, dnnl_nchw) != dnnl_success)
        return -1;
    if (dnnl_post_ops_create(&ops) != dnnl_success) goto done;
    if (e->fuse_bn) {
        e->n_channel_ops = 4;
        e->inv_sd = (float *)malloc((size_t)F * sizeof(float));
        if (!e->inv_sd) goto done;
    } else {
        e->n_channel_ops = 1;
        ops_alg[0] = dnnl_binary_add;
    }
    for (i = 0; i < e->n_channel_ops; ++i) {
        if (dnnl_post_ops_append_binary(ops, ops_alg[i], cmd) != dnnl_success) goto done;
        if (dnnl_memory_create(&e->channel_op[i], cmd, pdn_engine, DNNL_MEMORY_NONE) !=
            dnnl_success) {
            e->channel_op[i] = NULL;
            goto done;
        }
    }
    if (fuse && dnnl_post_ops_append_eltwise(ops, act, alpha, 0.f) != dnnl_success) goto done;
    if (dnnl_primitive_attr_set_post_ops(attr, ops) != dnnl_success) goto done;
    rc = 0;
done:
    if (ops) dnnl_post_ops_destroy(ops);
    dnnl_memory_desc_destroy(cmd);
    return rc;
}

static int entry_build(pdn_entry *e)
{
    const pdn_geo *g = &e->geo;
    dnnl_dims_t strides = {g->sy, g->sx}, dil = {g->dil - 1, g->dil - 1};
    dnnl_dims_t pl = {g->py, g->px};
    dnnl_dims_t pr = {pad_right(g->H, g->OH, g->kh, g->sy, g->py, g->dil),
                      pad_right(g->W, g->OW, g->kw, g->sx, g->px, g->dil)};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fwd_hint = NULL;
    pdn_mds m;
    size_t scratch = 0;
    int rc = -1;

    if (mds_init(&m, g) || dnnl_primitive_attr_create(&attr) != dnnl_success) goto done;
    /* scratchpads in one shared buffer instead of one per primitive */
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto done;
    if (e->dir == DIR_FWD_FUSED && fused_attr(e, attr)) goto done;
    {
        /* activations and weights in the layouts oneDNN prefers (blocked, or channels last),
         * converted at each call: with plain NCHW it picks a much slower gemm-based kernel */
        const_dnnl_memory_desc_t s = m.src_any, d = m.dst_any;
        /* training: channels in the JIT kernels' blocks (nChw16c, nChw8c) rather than the
         * channels-last layout oneDNN's forward picks: as fast, and its conversions from / to
         * NCHW cost half as much (inference keeps "any": its choice fuses the post-ops) */
        const int blk = channel_block();
        int blocked = e->dir != DIR_FWD_FUSED && g->groups == 1 && g->C % blk == 0 &&
                      g->F % blk == 0;
        /* direct: Winograd would change the numbers */
        const int fwd = e->dir == DIR_FWD || e->dir == DIR_FWD_FUSED;
        dnnl_primitive_desc_t *fpd = fwd ? &e->pd : &fwd_hint;
        if (blocked) {
            s = m.src_blk;
            d = m.dst_blk;
        }
        for (;;) {
            if (dnnl_convolution_forward_primitive_desc_create(
                    fpd, pdn_engine, fwd ? dnnl_forward_inference : dnnl_forward_training,
                    dnnl_convolution_direct, s, m.wei_any, NULL, d, strides, dil, pl, pr,
                    attr) != dnnl_success)
                goto done;
            /* a layout only the reference kernel takes: let oneDNN choose instead */
            if (!blocked || !is_reference(*fpd)) break;
            dnnl_primitive_desc_destroy(*fpd);
            *fpd = NULL;
            blocked = 0;
            s = m.src_any;
            d = m.dst_any;
        }
        if (fwd) {
            const_dnnl_primitive_desc_t pd = e->pd;
            set_impl(e, pd);
            if (port_init(&e->src, m.src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                          1, 0, SLOT_SRC) ||
                port_init(&e->wei, m.wei,
                          dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1, 0,
                          SLOT_WEI) ||
                port_init(&e->dst, m.dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
                          0, 0, SLOT_DST))
                goto done;
            scratch = scratch_size(pd);
        } else {
            const_dnnl_primitive_desc_t pd;
            if (dnnl_convolution_backward_weights_primitive_desc_create(
                    &e->pd, pdn_engine, dnnl_convolution_direct, s, m.wei_any, NULL, d, strides,
                    dil, pl, pr, fwd_hint, attr) != dnnl_success)
                goto done;
            pd = e->pd;
            set_impl(e, pd);
            if (port_init(&e->src, m.src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                          1, 0, SLOT_SRC) ||
                port_init(&e->wei, m.wei,
                          dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0), 0, 1,
                          SLOT_GRAD) ||
                port_init(&e->dst, m.dst,
                          dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0), 1, 0,
                          SLOT_DST))
                goto done;
            scratch = scratch_size(pd);
            if (e->dir == DIR_BWD) {
                size_t s2;
                if (dnnl_convolution_backward_data_primitive_desc_create(
                        &e->pd_data, pdn_engine, dnnl_convolution_direct, s, m.wei_any, d,
                        strides, dil, pl, pr, fwd_hint, attr) != dnnl_success)
                    goto done;
                pd = e->pd_data;
                if (port_init(&e->d_wei, m.wei,
                              dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1, 0,
                              SLOT_WEI) ||
                    port_init(&e->d_dst, m.dst,
                              dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0), 1, 0,
                              SLOT_DST) ||
                    port_init(&e->d_src, m.src,
                              dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0), 0, 1,
                              SLOT_GRAD))
                    goto done;
                s2 = scratch_size(pd);
                if (s2 > scratch) scratch = s2;
                if (dnnl_primitive_create(&e->prim_data, e->pd_data) != dnnl_success) {
                    e->prim_data = NULL;
                    goto done;
                }
            }
        }
    }
    /* declined (the fallback runs) rather than the reference kernel */
    if (is_reference(e->pd) || (e->pd_data && is_reference(e->pd_data))) goto done;
    if (dnnl_primitive_create(&e->prim, e->pd) != dnnl_success) {
        e->prim = NULL;
        goto done;
    }
    {
        /* one scratchpad memory sized for both directions' primitives */
        dnnl_memory_desc_t smd = NULL;
        dnnl_dims_t sdims = {(dnnl_dim_t)(scratch ? scratch : 1)};
        if (dnnl_memory_desc_create_with_tag(&smd, 1, sdims, dnnl_u8, dnnl_a) != dnnl_success)
            goto done;
        if (dnnl_memory_create(&e->scratch, smd, pdn_engine, DNNL_MEMORY_NONE) != dnnl_success)
            e->scratch = NULL;
        dnnl_memory_desc_destroy(smd);
        if (!e->scratch) goto done;
    }
    rc = 0;
done:
    if (fwd_hint) dnnl_primitive_desc_destroy(fwd_hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    mds_free(&m);
    return rc;
}

/* The cached entry for a geometry and direction, built on first use (under the lock). */
static pdn_entry *entry_get_fused(const pdn_geo *g, int dir, int fuse_bn, int fuse_act)
{
    const int threads = pdn_get_num_threads();
    pdn_entry *e;
    for (e = pdn_cache; e; e = e->next)
        if (e->dir == dir && e->fuse_bn == fuse_bn && e->fuse_act == fuse_act &&
            e->threads == threads && memcmp(&e->geo, g, sizeof(*g)) == 0)
            return e;
    e = (pdn_entry *)calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->geo = *g;
    e->dir = dir;
    e->threads = threads;
    e->fuse_bn = fuse_bn;
    e->fuse_act = fuse_act;
    if (!geo_valid(g) || !engine_ready() || entry_build(e) != 0) {
        /* keep a declined entry so that the decision is made once */
        pdn_entry bare;
        memset(&bare, 0, sizeof(bare));
        bare.geo = *g;
        bare.dir = dir;
        bare.threads = threads;
        bare.fuse_bn = fuse_bn;
        bare.fuse_act = fuse_act;
        bare.declined = 1;
        entry_free(e);
        e = (pdn_entry *)malloc(sizeof(*e));
        if (!e) return NULL;
        *e = bare;
    }
    e->next = pdn_cache;
    pdn_cache = e;
    return e;
}

static int scratch_bind(pdn_entry *e)
{
    const_dnnl_memory_desc_t md = NULL;
    void *buf;
    if (dnnl_memory_get_memory_desc(e->scratch, &md) != dnnl_success) return -1;
    buf = slot_get(SLOT_SCRATCH, dnnl_memory_desc_get_size(md));
    if (!buf) return -2;
    dnnl_memory_set_data_handle(e->scratch, buf);
    return 0;
}

static int run(dnnl_primitive_t prim, dnnl_exec_arg_t *args, int nargs)
{
    if (dnnl_primitive_execute(prim, pdn_stream, nargs, args) != dnnl_success) return -1;
    return dnnl_stream_wait(pdn_stream) == dnnl_success ? 0 : -1;
}

int pdn_onednn_built(void) { return 1; }

#define GEO_INIT {N, C, H, W, F, kh, kw, OH, OW, sy, sx, py, px, dil, groups}

/* Images per oneDNN call: the converted copies of one call's input and output stay near
 * PDN_ONEDNN_CHUNK_BYTES each, like the fallback's 8 MB im2col workspace (a whole training
 * batch of 416x416 activations would add hundreds of MB to the peak). */
#define PDN_ONEDNN_CHUNK_BYTES ((size_t)1 << 22)

typedef struct {
    pdn_entry *full, *rest;        /* the primitives for `chunk` images and for the rest */
    int chunk;
} pdn_plan;

/* Where the C core's own path is the faster one, measured on 2 cores (AVX-512):
 * - a 1x1, stride-1, unpadded convolution is one sgemm per image on NCHW data, with no
 *   im2col and no layout conversion: faster than oneDNN plus its conversions in forward and
 *   backward (3x at yolov4's 208x208 mish layers);
 * - at inference, an ungrouped, undilated convolution whose weights outweigh a quarter of
 *   its inputs and outputs: im2col plus oneDNN's sgemm reads the weights as they are,
 *   where oneDNN's convolution converts them at every call (a third of the time of
 *   yolov4's 13x13 layers), 0.75-0.95x its time and no converted copy on top of the memory
 *   peak; with few weights and activations of a few MB (yolov4-tiny's first layers)
 *   oneDNN's convolution is the faster, up to 1.5x; with activations above
 *   PDN_INFER_CONVERT_BYTES (yolov4's first layers at 416) they are even, and oneDNN's
 *   converted copies of a whole image would add tens of MB to the peak: im2col's bands
 *   stay within 8 MB; and where one image's input or output is above PDN_SLOT_KEEP_BYTES,
 *   its converted copy is unmapped between inferences and page-faulted in anew at every
 *   call (yolov4-tiny's first two layers at 416: 2.7 ms of 60 at 1 thread, + 10 MB peak).
 * Except at inference with an activation that the C core computes slowly per element
 * (swish and logistic call expf), which oneDNN then fuses. */
#define PDN_INFER_CONVERT_BYTES ((double)(16 << 20))

static int sgemm_is_faster(const pdn_geo *g, int dir, int act)
{
    const int pointwise = g->kh == 1 && g->kw == 1 && g->sy == 1 && g->sx == 1 &&
                          g->py == 0 && g->px == 0 && g->OH == g->H && g->OW == g->W;
    if (dir == DIR_FWD_FUSED) {
        const double weights = (double)g->F * (g->C / g->groups) * g->kh * g->kw;
        const double acts = (double)g->N * ((double)g->C * g->H * g->W +
                                            (double)g->F * g->OH * g->OW);
        const double in = (double)g->C * g->H * g->W, out = (double)g->F * g->OH * g->OW;
        const double image_bytes = (in > out ? in : out) * sizeof(float);
        if (act == PDN_SWISH || act == PDN_LOGISTIC) return 0;
        return pointwise || (g->groups == 1 && g->dil == 1 &&
                             (4 * weights >= acts ||
                              acts * sizeof(float) > PDN_INFER_CONVERT_BYTES ||
                              image_bytes > PDN_SLOT_KEEP_BYTES));
    }
    return pointwise;
}

/* The cached entries a call of N images needs; PDN_ONEDNN_SGEMM (nothing run yet) where the
 * C core's sgemm path is the faster one, PDN_ONEDNN_DECLINED (nothing run yet) when
 * oneDNN does not take one of them, -2 when out of memory. */
static int plan_get(pdn_plan *plan, const pdn_geo *g, int dir, int fuse_bn, int fuse_act)
{
    const size_t in = (size_t)g->C * g->H * g->W, out = (size_t)g->F * g->OH * g->OW;
    const size_t per = (in > out ? in : out) * sizeof(float);
    size_t n = PDN_ONEDNN_CHUNK_BYTES / (per ? per : 1);
    pdn_geo cg = *g;
    if (sgemm_is_faster(g, dir, fuse_act)) return PDN_ONEDNN_SGEMM;
    if (n < 1) n = 1;
    plan->chunk = n > (size_t)g->N ? g->N : (int)n;
    plan->rest = NULL;
    cg.N = plan->chunk;
    plan->full = entry_get_fused(&cg, dir, fuse_bn, fuse_act);
    if (!plan->full) return -2;
    if (plan->full->declined) return PDN_ONEDNN_DECLINED;
    if (g->N % plan->chunk) {
        cg.N = g->N % plan->chunk;
        plan->rest = entry_get_fused(&cg, dir, fuse_bn, fuse_act);
        if (!plan->rest) return -2;
        if (plan->rest->declined) return PDN_ONEDNN_DECLINED;
    }
    return 0;
}

static pdn_entry *plan_entry(const pdn_plan *plan, int n0, int N)
{
    return n0 + plan->chunk <= N ? plan->full : plan->rest;
}

/* Forward of one chunk; operand: the post-ops' per-channel vectors (DIR_FWD_FUSED). */
static int forward_chunk(pdn_entry *e, const float *x, const float *w, float *out,
                         const float *const *operand, const_dnnl_memory_desc_t *wei_done)
{
    dnnl_exec_arg_t args[8];
    int i, nargs = 4, rc = 0;
    args[0].arg = DNNL_ARG_SRC; args[0].memory = port_in(&e->src, x, &rc);
    args[1].arg = DNNL_ARG_WEIGHTS; args[1].memory = port_in_once(&e->wei, w, wei_done, &rc);
    args[2].arg = DNNL_ARG_DST; args[2].memory = port_out(&e->dst, out, &rc);
    args[3].arg = DNNL_ARG_SCRATCHPAD; args[3].memory = e->scratch;
    for (i = 0; i < e->n_channel_ops; ++i) {
        dnnl_memory_set_data_handle(e->channel_op[i], (void *)operand[i]);
        args[nargs].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1;
        args[nargs].memory = e->channel_op[i];
        ++nargs;
    }
    if (rc == 0) rc = scratch_bind(e);
    if (rc == 0) rc = run(e->prim, args, nargs);
    port_out_end(&e->dst, &rc);
    if (rc == 0 && e->dst.reorder) rc = dnnl_stream_wait(pdn_stream) == dnnl_success ? 0 : -1;
    return rc;
}

static int forward(const pdn_geo *g, const float *x, const float *w, float *out,
                   const float *scale, const float *mean, const float *var, const float *bias,
                   float eps, int fused, int act)
{
    const ptrdiff_t in = (ptrdiff_t)g->C * g->H * g->W, on = (ptrdiff_t)g->F * g->OH * g->OW;
    const float *operand[4] = {bias, NULL, NULL, NULL};
    const_dnnl_memory_desc_t wei_done = NULL;
    pdn_plan plan;
    int n0, rc;
    pthread_mutex_lock(&pdn_dnnl_lock);
    rc = plan_get(&plan, g, fused ? DIR_FWD_FUSED : DIR_FWD, fused && scale != NULL,
                  fused ? act : 0);
    if (rc == 0 && fused && scale) {
        /* Darknet: float(x - mean) times the double 1 / sqrt(var + eps) (batchnorm.c) */
        float *inv_sd = plan.full->inv_sd;
        int i;
        for (i = 0; i < g->F; ++i) inv_sd[i] = (float)(1.0 / sqrt((double)(var[i] + eps)));
        if (plan.rest) memcpy(plan.rest->inv_sd, inv_sd, (size_t)g->F * sizeof(float));
        operand[0] = mean; operand[1] = inv_sd; operand[2] = scale; operand[3] = bias;
    }
    for (n0 = 0; rc == 0 && n0 < g->N; n0 += plan.chunk) {
        pdn_entry *e = plan_entry(&plan, n0, g->N);
        if (e == plan.rest && fused && scale) operand[1] = e->inv_sd;
        rc = forward_chunk(e, x + n0 * in, w, out + n0 * on, operand, &wei_done);
    }
    slots_trim();
    pthread_mutex_unlock(&pdn_dnnl_lock);
    return rc;
}

int pdn_onednn_conv2d(const float *x, const float *w, float *out,
                      int N, int C, int H, int W, int F, int kh, int kw, int OH, int OW,
                      int sy, int sx, int py, int px, int dil, int groups)
{
    pdn_geo g = GEO_INIT;
    return forward(&g, x, w, out, NULL, NULL, NULL, NULL, 0.f, 0, 0);
}

int pdn_onednn_conv2d_inference(const float *x, const float *w, float *out,
                                int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                int OW, int sy, int sx, int py, int px, int dil, int groups,
                                const float *scale, const float *mean, const float *var,
                                const float *bias, float eps, int act)
{
    pdn_geo g = GEO_INIT;
    return forward(&g, x, w, out, scale, mean, var, bias, eps, 1, act);
}

/* A call's weight gradient, summed over its chunks in the primitive's layout in SLOT_DW_SUM
 * and added to dw once (one reorder with sum instead of one per chunk). */
typedef struct {
    pdn_port *port;                /* the port whose layout the sum is in; NULL: no sum yet */
    float *dw;
    int slot;                      /* SLOT_DW_SUM; SLOT_GRAD when the call is one chunk: no
                                    * sum then, and dw is added before dx uses that slot */
} pdn_dw_sum;

static void dw_sum_flush(pdn_dw_sum *acc, int *rc)
{
    pdn_port *p = acc->port;
    acc->port = NULL;
    if (!p || *rc) return;
    dnnl_memory_set_data_handle(p->user_mem, acc->dw);
    dnnl_memory_set_data_handle(p->prim_mem,
                                slot_get(acc->slot, dnnl_memory_desc_get_size(p->prim_md)));
    if (reorder_run(p->reorder, p->prim_mem, p->user_mem)) *rc = -1;
}

/* The memory the backward-weights primitive writes this chunk's gradient to: the sum itself
 * for the first chunk (or one whose layout differs: the sum so far is added to dw first),
 * else a scratch copy that dw_sum_add adds to the sum. */
static dnnl_memory_t dw_sum_target(pdn_dw_sum *acc, pdn_port *p, int *fresh, int *rc)
{
    const size_t bytes = dnnl_memory_desc_get_size(p->prim_md);
    void *buf;
    *fresh = !(acc->port && dnnl_memory_desc_equal(acc->port->prim_md, p->prim_md));
    if (*fresh) {
        dw_sum_flush(acc, rc);
        acc->port = p;
    }
    buf = slot_get(*fresh ? acc->slot : SLOT_GRAD, bytes);
    if (!buf) { *rc = -2; return p->prim_mem; }
    dnnl_memory_set_data_handle(p->prim_mem, buf);
    return p->prim_mem;
}

static void dw_sum_add(const pdn_port *p)
{
    const size_t n = dnnl_memory_desc_get_size(p->prim_md) / sizeof(float);
    float *sum = (float *)pdn_slot[SLOT_DW_SUM];
    const float *g = (const float *)pdn_slot[SLOT_GRAD];
    size_t i;
    for (i = 0; i < n; ++i) sum[i] += g[i];
}

static int backward_chunk(pdn_entry *e, const float *x, const float *w, const float *delta,
                          float *dx, pdn_dw_sum *acc, const_dnnl_memory_desc_t *wei_done)
{
    dnnl_exec_arg_t args[4];
    int rc = 0, fresh = 1;
    /* dL/dw of the chunk: into the call's sum (dw_sum_flush adds it to dw) */
    args[0].arg = DNNL_ARG_SRC; args[0].memory = port_in(&e->src, x, &rc);
    args[1].arg = DNNL_ARG_DIFF_DST; args[1].memory = port_in(&e->dst, delta, &rc);
    args[2].arg = DNNL_ARG_DIFF_WEIGHTS; args[2].memory = dw_sum_target(acc, &e->wei, &fresh, &rc);
    args[3].arg = DNNL_ARG_SCRATCHPAD; args[3].memory = e->scratch;
    if (rc == 0) rc = scratch_bind(e);
    if (rc == 0) rc = run(e->prim, args, 4);
    if (rc == 0 && !fresh) dw_sum_add(&e->wei);
    if (acc->slot == SLOT_GRAD) dw_sum_flush(acc, &rc);
    if (rc == 0 && dx) {
        /* dx += dL/dx; delta already converted when both primitives want one layout */
        args[0].arg = DNNL_ARG_DIFF_DST;
        if (e->dst.reorder && e->d_dst.reorder &&
            dnnl_memory_desc_equal(e->dst.prim_md, e->d_dst.prim_md))
            args[0].memory = e->dst.prim_mem;
        else
            args[0].memory = port_in(&e->d_dst, delta, &rc);
        args[1].arg = DNNL_ARG_WEIGHTS;
        args[1].memory = port_in_once(&e->d_wei, w, wei_done, &rc);
        args[2].arg = DNNL_ARG_DIFF_SRC; args[2].memory = port_out(&e->d_src, dx, &rc);
        if (rc == 0) rc = run(e->prim_data, args, 4);
        port_out_end(&e->d_src, &rc);
    }
    if (rc == 0) rc = dnnl_stream_wait(pdn_stream) == dnnl_success ? 0 : -1;
    return rc;
}

int pdn_onednn_conv2d_backward(const float *x, const float *w, const float *delta, float *dx,
                               float *dw, int N, int C, int H, int W, int F, int kh, int kw,
                               int OH, int OW, int sy, int sx, int py, int px, int dil,
                               int groups)
{
    pdn_geo g = GEO_INIT;
    const ptrdiff_t in = (ptrdiff_t)C * H * W, on = (ptrdiff_t)F * OH * OW;
    pdn_dw_sum acc = {NULL, dw, SLOT_DW_SUM};
    const_dnnl_memory_desc_t wei_done = NULL;
    pdn_plan plan;
    int n0, rc;
    pthread_mutex_lock(&pdn_dnnl_lock);
    rc = plan_get(&plan, &g, dx ? DIR_BWD : DIR_BWD_NO_DX, 0, 0);
    if (rc == 0 && plan.chunk >= N) acc.slot = SLOT_GRAD;
    for (n0 = 0; rc == 0 && n0 < N; n0 += plan.chunk)
        rc = backward_chunk(plan_entry(&plan, n0, N), x + n0 * in, w, delta + n0 * on,
                            dx ? dx + n0 * in : NULL, &acc, &wei_done);
    dw_sum_flush(&acc, &rc);
    if (rc == 0) rc = dnnl_stream_wait(pdn_stream) == dnnl_success ? 0 : -1;
    slots_trim();
    pthread_mutex_unlock(&pdn_dnnl_lock);
    return rc;
}

/* the plan of a forward (act < 0), fused inference (act >= 0) or backward (act == -2) */
static int plan_of(pdn_plan *plan, const pdn_geo *g, int act)
{
    if (act == -2) return plan_get(plan, g, DIR_BWD, 0, 0);
    return act < 0 ? plan_get(plan, g, DIR_FWD, 0, 0) : plan_get(plan, g, DIR_FWD_FUSED, 1, act);
}

int pdn_onednn_conv2d_supported(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                int OW, int sy, int sx, int py, int px, int dil, int groups,
                                int act)
{
    pdn_geo g = GEO_INIT;
    pdn_plan plan;
    int rc;
    pthread_mutex_lock(&pdn_dnnl_lock);
    rc = plan_of(&plan, &g, act) ? PDN_ONEDNN_DECLINED : 0;
    pthread_mutex_unlock(&pdn_dnnl_lock);
    return rc;
}

const char *pdn_onednn_conv2d_impl(int N, int C, int H, int W, int F, int kh, int kw, int OH,
                                   int OW, int sy, int sx, int py, int px, int dil, int groups,
                                   int act)
{
    pdn_geo g = GEO_INIT;
    pdn_plan plan;
    const char *name;
    pthread_mutex_lock(&pdn_dnnl_lock);
    name = plan_of(&plan, &g, act) == 0 ? plan.full->impl : "";
    pthread_mutex_unlock(&pdn_dnnl_lock);
    return name;
}

void pdn_onednn_clear_cache(void)
{
    int i;
    pthread_mutex_lock(&pdn_dnnl_lock);
    while (pdn_cache) {
        pdn_entry *e = pdn_cache;
        pdn_cache = e->next;
        if (e->declined) free(e);
        else entry_free(e);
    }
    for (i = 0; i < SLOT_COUNT; ++i) slot_free(i);
    pthread_mutex_unlock(&pdn_dnnl_lock);
}

#endif  /* PDN_WITH_ONEDNN */
