"""The detection heads' training statistics of an iteration, and Darknet's console lines for
them ("v3 (ciou loss, Normalizer: ...) Region 30 Avg (IOU: ...), count: ..." and the like;
the loss named as the cfg names it, where AB prints "iou" for diou and ciou).

Darknet prints a head's line after every pass; here the passes of an iteration are summed
first (counts added, IoU, recall, objectness and class averages weighted by the boxes they
average over, losses per image averaged over the passes), one line per head an iteration.
"""

import math

__all__ = ["HeadTally", "head_lines"]

# averages over the truths (weighted by count) and over the images (plain mean of the passes)
_PER_TRUTH = ("avg_iou", "recall50", "recall75", "recall", "avg_obj")
_PER_PASS = ("class_loss", "iou_loss", "uc_loss", "total_loss", "avg_anyobj", "any_obj")


class HeadTally:
    """Adds up the heads' ``stats`` pass by pass; :meth:`result` gives one dict per head
    (``layer`` its index, ``type``, ``count`` and the averages)."""

    def __init__(self, network):
        self.heads = [l for l in network.layers
                      if l.layer_type in ("yolo", "gaussian_yolo", "region", "detection")]
        self.sums = {l.index: {} for l in self.heads}
        self.passes = {l.index: 0 for l in self.heads}

    def add(self):
        for layer in self.heads:
            st = getattr(layer, "stats", None)
            if not st or getattr(layer, "cost", None) is None:
                continue
            s = self.sums[layer.index]
            self.passes[layer.index] += 1
            count = st.get("count", 0)
            s["count"] = s.get("count", 0) + count
            for k in _PER_TRUTH:
                if k in st and count and math.isfinite(st[k]):
                    s[k] = s.get(k, 0.0) + st[k] * count
            if "avg_cat" in st:
                n = st.get("class_count", count)
                if n and math.isfinite(st["avg_cat"]):
                    s["avg_cat"] = s.get("avg_cat", 0.0) + st["avg_cat"] * n
                s["class_count"] = s.get("class_count", 0) + n
            for k in _PER_PASS:
                if k in st:
                    s[k] = s.get(k, 0.0) + st[k]

    def result(self):
        out = []
        for layer in self.heads:
            s, passes = self.sums[layer.index], self.passes[layer.index]
            if not passes:
                continue
            count = s.get("count", 0)
            r = {"layer": layer.index, "type": layer.layer_type, "count": count}
            for k in _PER_TRUTH:
                if k in s:
                    r[k] = s[k] / count if count else 0.0
            if "avg_cat" in s or "class_count" in s:
                n = s.get("class_count", 0)
                r["avg_cat"] = s.get("avg_cat", 0.0) / n if n else 0.0
            for k in _PER_PASS:
                if k in s:
                    r[k] = s[k] / passes
            out.append(r)
        return out


def head_lines(network, results):
    """Darknet's console line for each head's iteration result (as :meth:`HeadTally.result`
    gives them)."""
    lines = []
    for r in results:
        layer = network.layers[r["layer"]]
        g = r.get
        if r["type"] == "yolo":
            line = (f"v3 ({layer.iou_loss} loss, Normalizer: (iou: "
                    f"{layer.iou_normalizer:.2f}, obj: {layer.obj_normalizer:.2f}, cls: "
                    f"{layer.cls_normalizer:.2f}) Region {layer.index} Avg (IOU: "
                    f"{g('avg_iou', 0):f}), count: {r['count']}, ")
            if layer.show_details:
                line += (f"class_loss = {g('class_loss', 0):f}, iou_loss = "
                         f"{g('iou_loss', 0):f}, ")
            lines.append(line + f"total_loss = {g('total_loss', 0):f}")
        elif r["type"] == "gaussian_yolo":
            lines.append(f"Region {layer.index} Avg IOU: {g('avg_iou', 0):f}, Class: "
                         f"{g('avg_cat', 0):f}, Obj: {g('avg_obj', 0):f}, No Obj: "
                         f"{g('avg_anyobj', 0):f}, .5R: {g('recall50', 0):f}, .75R: "
                         f"{g('recall75', 0):f},  count: {r['count']}, class_loss = "
                         f"{g('class_loss', 0):.2f}, iou_loss = {g('iou_loss', 0):.2f}, "
                         f"uc_loss = {g('uc_loss', 0):.2f}, total_loss = "
                         f"{g('total_loss', 0):.2f}")
        elif r["type"] == "region":
            lines.append(f"Region Avg IOU: {g('avg_iou', 0):f}, Class: {g('avg_cat', 0):f}, "
                         f"Obj: {g('avg_obj', 0):f}, No Obj: {g('avg_anyobj', 0):f}, Avg "
                         f"Recall: {g('recall', 0):f},  count: {r['count']}")
        else:
            lines.append(f"Detection Avg IOU: {g('avg_iou', 0):f}, Any Obj: "
                         f"{g('any_obj', 0):f}, count: {r['count']}")
    return lines
