"""What the detection-head tests share: a stem that brings a 32x32 image to an 8x8x8 map
(batch 4 in 2 subdivisions), a batch of random images with two boxes each, and Darknet's
box_iou (box.c) in scalar float32 for the loop-by-loop transcriptions."""

import numpy as np

STEM = """[net]
batch=4
subdivisions=2
width=32
height=32
channels=3
learning_rate=0.001
momentum=0.9
decay=0.0005
[convolutional]
filters=8
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky
[maxpool]
size=2
stride=2
"""


# one net per head (format with extra= for more head options; YOLOV1 with outputs=)
REGION = STEM + """[convolutional]
filters=14
size=1
activation=linear
[region]
anchors=1,1,2.5,2
classes=2
coords=4
num=2
softmax=1
{extra}
"""

YOLOV1 = STEM + """[local]
filters=8
size=3
stride=1
pad=1
activation=leaky
[connected]
output={outputs}
activation=linear
[detection]
classes=2
coords=4
rescore=1
side=3
num=2
softmax=0
sqrt=1
object_scale=1
noobject_scale=.5
class_scale=1
coord_scale=5
{extra}
"""

GAUSSIAN = STEM + """[convolutional]
filters=22
size=1
activation=linear
[Gaussian_yolo]
mask=0,1
anchors=6,6, 14,12, 24,24
classes=2
num=3
iou_loss=giou
iou_normalizer=0.5
delta_normalizer=0.5
{extra}
"""


def two_box_batch(rng, classes=2):
    """4 images [4, 3, 32, 32] and their truths [4, 5, 5] (two boxes each)."""
    x = rng.random((4, 3, 32, 32), dtype=np.float32)
    t = np.zeros((4, 5, 5), np.float32)
    for b in range(4):
        t[b, :2] = [[rng.uniform(.1, .9), rng.uniform(.1, .9), rng.uniform(.1, .6),
                     rng.uniform(.1, .6), rng.integers(0, classes)] for _ in range(2)]
    return x, t


def darknet_box_iou(a, b):
    """box.c's box_iou on two (x, y, w, h) boxes of float32 scalars."""
    f32 = np.float32

    def overlap(x1, w1, x2, w2):
        l1, l2 = x1 - w1 / f32(2), x2 - w2 / f32(2)
        r1, r2 = x1 + w1 / f32(2), x2 + w2 / f32(2)
        return (r1 if r1 < r2 else r2) - (l1 if l1 > l2 else l2)

    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    inter = f32(0) if (w < 0 or h < 0) else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return f32(0) if inter == 0 or union == 0 else inter / union
