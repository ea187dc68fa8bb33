/* Small helpers for pydarknet/backend/cuda.py: the generic array ops of the backend API
 * (axpy, all_finite) and the pieces its other ops need (a product-accumulate for sam's
 * one-sided backward, max-pool's backward without the window geometry, fp16 conversion for
 * the mixed-precision convolution GEMMs). fill and copy need no kernel (cuMemsetD32,
 * cuMemcpyDtoD).
 *
 *   pdn_axpy(x, y, n, alpha)             y += alpha * x, rounded like numpy's float32 steps
 *                                        (the product, then the sum; no FMA)
 *   pdn_count_nonfinite(x, n, count)     *count += the number of NaN / inf values in x
 *                                        (the caller zeroes *count; one integer atomicAdd
 *                                        per block: the count does not depend on the grid)
 *   pdn_mul_add(a, b, y, n)              y += a * b   (sam_backward with one output)
 *   pdn_index_add(delta, indexes, dx, n, dx_n)
 *       dx[indexes[i]] += delta[i] for i < n where 0 <= indexes[i] < dx_n: max-pool's backward
 *       when the window geometry is unknown (float atomicAdd: the order of the additions, and
 *       so the last bits, may change from run to run where windows overlap; the gather
 *       pdn_maxpool_backward is deterministic and used whenever the geometry is known)
 *   pdn_f32_to_f16(x, y, n)              y = (half) x, round to nearest even (y: n halves)
 *
 * Grid-stride, any grid, 256 threads per block; no standard headers (the fp16 conversion is
 * one PTX instruction, so cuda_fp16.h is not needed). */
#include "common.cuh"

extern "C" __global__ void pdn_axpy(const float *x, float *y, int n, float alpha)
{
    pdn_grid_loop((long long)n, [&](auto i) { y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i])); });
}

extern "C" __global__ void pdn_count_nonfinite(const float *x, int n, int *count)
{
    int bad = 0;
    pdn_grid_loop((long long)n, [&](auto i) {
        /* exponent bits all ones: inf or NaN (works under any fast-math setting) */
        const unsigned u = __float_as_uint(x[i]);
        bad += (u & 0x7f800000u) == 0x7f800000u;
    });
    bad = pdn_block_sum(bad);
    if (threadIdx.x == 0 && bad) atomicAdd(count, bad);
}

extern "C" __global__ void pdn_mul_add(const float *a, const float *b, float *y, int n)
{
    pdn_grid_loop((long long)n, [&](auto i) { y[i] += a[i] * b[i]; });
}

extern "C" __global__ void pdn_index_add(const float *delta, const int *indexes, float *dx,
                                         int n, int dx_n)
{
    pdn_grid_loop((long long)n, [&](auto i) {
        const int k = indexes[i];
        if (k >= 0 && k < dx_n) atomicAdd(dx + k, delta[i]);
    });
}

extern "C" __global__ void pdn_f32_to_f16(const float *x, unsigned short *y, int n)
{
    pdn_grid_loop((long long)n, [&](auto i) {
#ifdef PDN_HOST_EMULATION /* tests/cuda_host: the kernels compiled for the CPU */
        y[i] = pdn_host_f32_to_f16(x[i]);
#else
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x[i]));
        y[i] = h;
#endif
    });
}
