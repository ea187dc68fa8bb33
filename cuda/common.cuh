/* Helpers shared by every pydarknet CUDA kernel file (cuda/*.cu).
 *
 * Every kernel is `extern "C" __global__`, takes plain pointers and 32-bit ints/floats, and
 * walks its work with a grid-stride loop, so any grid size is correct; launch it with
 * PDN_THREADS (256) threads per block. Blocks are per channel / per row only where a kernel
 * says so (the reductions). Nothing here allocates or calls the runtime.
 * No standard headers: the sources also compile with NVRTC (cupy.RawModule(code=...),
 * pycuda SourceModule) on machines without nvcc. */
#ifndef PDN_COMMON_CUH
#define PDN_COMMON_CUH

#define PDN_THREADS 256
#define PDN_FLT_MAX 3.402823466e+38f

/* Grid-stride loop over [0, n): body(i) with a 32-bit index where n and the grid fit
 * (64-bit division is many times slower than 32-bit on the GPU), else a 64-bit one. */
template <class Body>
__device__ __forceinline__ void pdn_grid_loop(long long n, Body body)
{
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    const unsigned long long first = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n <= 0x7fffffffLL && step <= 0x7fffffffULL) {
        for (unsigned i = (unsigned)first; i < (unsigned)n; i += (unsigned)step) body(i);
    } else {
        for (long long i = (long long)first; i < n; i += (long long)step) body(i);
    }
}

__device__ __forceinline__ bool pdn_aligned16(const void *p)
{
    return (reinterpret_cast<unsigned long long>(p) & 15ULL) == 0;
}

/* out[i] = f(in[i]) for i < n (in == out allowed: in place). float4 loads and stores when
 * both pointers are 16-byte aligned, then a scalar tail. */
template <class F>
__device__ __forceinline__ void pdn_map(const float *in, float *out, long long n, F f)
{
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long step = (long long)gridDim.x * blockDim.x;
    long long done = 0;
    if (pdn_aligned16(in) && pdn_aligned16(out)) {
        const long long n4 = n >> 2;
        const float4 *in4 = reinterpret_cast<const float4 *>(in);
        float4 *out4 = reinterpret_cast<float4 *>(out);
        for (long long i = first; i < n4; i += step) {
            float4 v = in4[i];
            v.x = f(v.x);
            v.y = f(v.y);
            v.z = f(v.z);
            v.w = f(v.w);
            out4[i] = v;
        }
        done = n4 << 2;
    }
    for (long long i = done + first; i < n; i += step) out[i] = f(in[i]);
}

/* delta[i] *= g(y[i], x[i]) for i < n. G::uses_y / G::uses_x say which of y and x are read
 * (the other may be NULL). Vectorised like pdn_map. */
template <class G>
__device__ __forceinline__ void pdn_map_grad(float *delta, const float *y, const float *x,
                                             long long n, G g)
{
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long step = (long long)gridDim.x * blockDim.x;
    long long done = 0;
    if (pdn_aligned16(delta) && (!G::uses_y || pdn_aligned16(y)) &&
        (!G::uses_x || pdn_aligned16(x))) {
        const long long n4 = n >> 2;
        float4 *d4 = reinterpret_cast<float4 *>(delta);
        const float4 *y4 = reinterpret_cast<const float4 *>(y);
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
        for (long long i = first; i < n4; i += step) {
            float4 d = d4[i];
            const float4 yv = G::uses_y ? y4[i] : zero;
            const float4 xv = G::uses_x ? x4[i] : zero;
            d.x *= g(yv.x, xv.x);
            d.y *= g(yv.y, xv.y);
            d.z *= g(yv.z, xv.z);
            d.w *= g(yv.w, xv.w);
            d4[i] = d;
        }
        done = n4 << 2;
    }
    for (long long i = done + first; i < n; i += step)
        delta[i] *= g(G::uses_y ? y[i] : 0.f, G::uses_x ? x[i] : 0.f);
}

/* ---- reductions (warp shuffles, then one shared slot per warp) ---- */
template <typename T>
__device__ __forceinline__ T pdn_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* Sum of v over the block; the result is valid in thread 0. Every thread of the block must
 * call it (it synchronises); it may be called repeatedly. blockDim.x a multiple of 32. */
template <typename T>
__device__ __forceinline__ T pdn_block_sum(T v)
{
    __shared__ T part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = pdn_warp_sum(v);
    __syncthreads();                   /* the previous call's readers are done with part */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = (lane < (int)(blockDim.x >> 5)) ? part[lane] : (T)0;
        v = pdn_warp_sum(v);
    }
    return v;
}

#endif
