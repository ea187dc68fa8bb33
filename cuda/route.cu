/* [route]: copy one block of values per image (a channel block of NCHW tensors).
 *
 *   pdn_copy_block(src, dst, batch, block, src_stride, src_offset, dst_stride, dst_offset,
 *                  accumulate)
 *       for each image b and i < block:
 *       dst[b*dst_stride + dst_offset + i] (=, or += when accumulate != 0)
 *           src[b*src_stride + src_offset + i]
 *   Forward: src = an input layer's output (offset = its group's start), dst = the route's
 *   output (offset = the channels before it); backward: the same with src and dst swapped
 *   and accumulate = 1. float4 copies when every offset and pointer allows them. */
#include "common.cuh"

extern "C" __global__ void pdn_copy_block(const float *src, float *dst, int batch, int block,
                                          int src_stride, int src_offset, int dst_stride,
                                          int dst_offset, int accumulate)
{
    const float *s0 = src + src_offset;
    float *d0 = dst + dst_offset;
    if (((block | src_stride | dst_stride) & 3) == 0 && pdn_aligned16(s0) && pdn_aligned16(d0)) {
        const int b4 = block >> 2, ss4 = src_stride >> 2, ds4 = dst_stride >> 2;
        const float4 *s4 = reinterpret_cast<const float4 *>(s0);
        float4 *d4 = reinterpret_cast<float4 *>(d0);
        pdn_grid_loop((long long)batch * b4, [&](auto i) {
            using I = decltype(i);
            const I b = i / (I)b4, k = i % (I)b4;
            const float4 v = s4[(long long)b * ss4 + k];
            float4 *o = d4 + (long long)b * ds4 + k;
            if (accumulate) {
                float4 w = *o;
                w.x += v.x; w.y += v.y; w.z += v.z; w.w += v.w;
                *o = w;
            } else {
                *o = v;
            }
        });
        return;
    }
    pdn_grid_loop((long long)batch * block, [&](auto i) {
        using I = decltype(i);
        const I b = i / (I)block, k = i % (I)block;
        const float v = s0[(long long)b * src_stride + k];
        float *o = d0 + (long long)b * dst_stride + k;
        *o = accumulate ? *o + v : v;
    });
}
