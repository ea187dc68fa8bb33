/* Box overlaps for the [yolo] loss, in the float32 operations of pydarknet.boxes (numpy)
 * and of Darknet's box.c: edges x -+ w / 2, intersection of the clamped overlaps, union
 * a + b - intersection, IoU 0 where the intersection or the union is 0. */
#include "boxes.h"

#include <math.h>
#include <stdlib.h>

#include "wide.h"

/* numpy's minimum / maximum: NaN when either is NaN */
static inline float nan_min(float a, float b) { return (a < b || a != a) ? a : b; }
static inline float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }
/* numpy's fmax: the other value when one is NaN */
static inline float num_max(float a, float b) { return (b > a || a != a) ? b : a; }

PDN_WIDE512
int pdn_best_iou(const float *truths, int K, const float *preds, ptrdiff_t M, float *best)
{
    float *edges = malloc(sizeof(float) * 5 * (size_t)(M > 0 ? M : 1));
    if (!edges)
        return -1;
    float *L = edges, *R = L + M, *T = R + M, *B = T + M, *A = B + M;
    for (ptrdiff_t m = 0; m < M; ++m) {
        float x = preds[4 * m], y = preds[4 * m + 1], w = preds[4 * m + 2],
              h = preds[4 * m + 3];
        L[m] = x - w / 2.0f;
        R[m] = x + w / 2.0f;
        T[m] = y - h / 2.0f;
        B[m] = y + h / 2.0f;
        A[m] = w * h;
        best[m] = NAN;
    }
    for (int k = 0; k < K; ++k) {
        float x = truths[4 * k], y = truths[4 * k + 1], w = truths[4 * k + 2],
              h = truths[4 * k + 3];
        float l = x - w / 2.0f, r = x + w / 2.0f, t = y - h / 2.0f, b = y + h / 2.0f;
        float area = w * h;
        for (ptrdiff_t m = 0; m < M; ++m) {
            float ow = nan_max(nan_min(r, R[m]) - nan_max(l, L[m]), 0.0f);
            float oh = nan_max(nan_min(b, B[m]) - nan_max(t, T[m]), 0.0f);
            float inter = ow * oh;
            float uni = (area + A[m]) - inter;
            float iou = (inter != 0.0f && uni != 0.0f) ? inter / uni : 0.0f;
            best[m] = num_max(best[m], iou);
        }
    }
    for (ptrdiff_t m = 0; m < M; ++m)
        best[m] = num_max(best[m], 0.0f);
    free(edges);
    return 0;
}
