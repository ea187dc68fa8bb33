#ifndef PDN_BOXES_H
#define PDN_BOXES_H
#include <stddef.h>

/* The per-cell pass of Darknet's [yolo] loss: best[m] = the largest IoU of predicted box
 * preds[m] with any of the K truths (boxes x, y, w, h, float32, 4 a row), NaN IoUs left
 * out and the result at least 0 (a NaN result is 0). Each IoU is box.c's (pydarknet.boxes'
 * box_iou_matrix) to the bit. Returns 0, or -1 when scratch memory cannot be had. */
int pdn_best_iou(const float *truths, int K, const float *preds, ptrdiff_t M, float *best);

#endif
