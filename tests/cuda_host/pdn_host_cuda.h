/* CUDA's device built-ins for compiling cuda/*.cu as host C++ (tests/cuda_host.py force-
 * includes this file): the kernels' own source then runs on the CPU, one block after another,
 * each block's threads as fibers that switch at __syncthreads (launch.cpp). What this gives
 * is the kernels' indexing, bounds, barriers and formulas checked without a GPU; what it
 * cannot give is the GPU's float rounding of expf/tanhf (the host libm's is used) or its
 * races (the fibers of a block never run at the same time). */
#ifndef PDN_HOST_CUDA_H
#define PDN_HOST_CUDA_H

#include <cmath>
#include <cstdint>
#include <cstring>

#define PDN_HOST_EMULATION 1
using std::isfinite;   /* a device function in CUDA, std:: in host C++ */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* one copy shared by the block's fibers; blocks run one at a time */
#define __shared__ static

struct pdn_dim3 {
    unsigned x, y, z;
};
extern pdn_dim3 threadIdx, blockIdx, blockDim, gridDim;

struct alignas(16) float4 {
    float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

extern "C" void pdn_host_syncthreads(void);
extern "C" void pdn_host_shfl_down(const void *value, void *result, int bytes, int delta);

inline void __syncthreads() { pdn_host_syncthreads(); }

/* a warp shuffle: every lane of the warp gives its value, then reads lane + delta's
 * (its own where that is past the warp) */
template <class T>
inline T __shfl_down_sync(unsigned, T v, int delta)
{
    static_assert(sizeof(T) <= 8, "shuffled values are at most 8 bytes");
    T r;
    pdn_host_shfl_down(&v, &r, (int)sizeof(T), delta);
    return r;
}

/* one fiber runs at a time: a plain read-modify-write is atomic */
inline int atomicAdd(int *p, int v)
{
    const int old = *p;
    *p = old + v;
    return old;
}
inline float atomicAdd(float *p, float v)
{
    const float old = *p;
    *p = old + v;
    return old;
}

/* round-to-nearest without contraction into an FMA (built with -ffp-contract=off) */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }

inline unsigned __float_as_uint(float x)
{
    unsigned u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

/* cvt.rn.f16.f32: round to nearest even */
inline unsigned short pdn_host_f32_to_f16(float x)
{
    const _Float16 h = (_Float16)x;
    unsigned short u;
    std::memcpy(&u, &h, sizeof u);
    return u;
}

#endif
