/* [yolo] forward activation: x [batch, n anchors, entries = 4 + 1 + classes, hw].
 *
 *   pdn_yolo_activate(x, out, batch, n, entries, hw, scale_x_y, bias_x_y, new_coords)
 *       out = x, with (new_coords == 0) logistic on entries 0, 1 (x, y) and 4.. (objectness,
 *       classes); then entries 0, 1: out = out * scale_x_y + bias_x_y, where the caller
 *       passes bias_x_y = -0.5 * (scale_x_y - 1). out == x is allowed (in place). */
#include "common.cuh"

extern "C" __global__ void pdn_yolo_activate(const float *x, float *out, int batch, int n,
                                             int entries, int hw, float scale_x_y,
                                             float bias_x_y, int new_coords)
{
    pdn_grid_loop((long long)batch * n * entries * hw, [&](auto i) {
        using I = decltype(i);
        const int e = (int)((i / (I)hw) % (I)entries);
        float v = x[i];
        if (!new_coords && (e < 2 || e >= 4)) v = 1.f / (1.f + expf(-v));
        if (e < 2) v = v * scale_x_y + bias_x_y;
        out[i] = v;
    });
}
