"""Darknet's training chart (loss and mAP@0.5 against iterations), drawn with OpenCV."""

import os

import numpy as np


def draw_chart(path, history, max_batches, title="", metric="mAP@0.5"):
    """Writes :func:`chart_image` as a PNG (to a temporary file first, then renamed) and
    returns it."""
    import cv2
    img = chart_image(history, max_batches, title, metric)
    tmp = f"{path}.tmp{os.getpid()}.png"
    cv2.imwrite(tmp, img)
    os.replace(tmp, path)
    return img


def chart_image(history, max_batches, title="", metric="mAP@0.5"):
    """The chart, BGR uint8. history: list of dicts with 'iteration', 'avg_loss' and
    optionally 'map'."""
    import cv2
    w, h, left, bottom, top, right = 1000, 600, 70, 50, 30, 70
    img = np.full((h, w, 3), 255, np.uint8)
    x0, x1, y0, y1 = left, w - right, h - bottom, top
    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    losses = [p["avg_loss"] for p in history if p.get("avg_loss") is not None]
    # scale to the recent losses (the first iterations' huge values are clipped, like
    # Darknet's max_chart_loss), so that the curve stays readable late in training
    recent = losses[len(losses) // 4:]
    top_loss = max(1e-6, max(recent) * 1.2) if recent else 1.0
    span = max(max_batches, 1)

    def px(it):
        return int(x0 + (x1 - x0) * min(it, span) / span)

    def py(v, vmax):
        return int(y0 - (y0 - y1) * min(max(v, 0.0), vmax) / vmax)

    for k in range(11):   # grid and axis labels
        y = y0 - (y0 - y1) * k // 10
        cv2.line(img, (x0, y), (x1, y), (220, 220, 220), 1)
        cv2.putText(img, f"{top_loss * k / 10:.2f}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
        cv2.putText(img, f"{k * 10}%", (x1 + 8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 200), 1)
        x = x0 + (x1 - x0) * k // 10
        cv2.putText(img, str(span * k // 10), (x - 15, y0 + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
    pts = np.array([(px(p["iteration"]), py(p["avg_loss"], top_loss)) for p in history
                    if p.get("avg_loss") is not None], np.int32)
    if len(pts) > 1:
        cv2.polylines(img, [pts], False, (200, 0, 0), 1, cv2.LINE_AA)
    maps = [(p["iteration"], p["map"]) for p in history if p.get("map") is not None]
    for (ia, ma), (ib, mb) in zip(maps, maps[1:]):
        cv2.line(img, (px(ia), py(ma, 1.0)), (px(ib), py(mb, 1.0)), (0, 0, 200), 2, cv2.LINE_AA)
    for it, m in maps:
        cv2.circle(img, (px(it), py(m, 1.0)), 3, (0, 0, 200), -1)
        cv2.putText(img, f"{m * 100:.1f}%", (px(it) - 15, py(m, 1.0) - 8),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1)
    last = history[-1] if history else {}
    label = (f"{title}  iteration {last.get('iteration', 0)}/{max_batches}  avg loss "
             f"{last.get('avg_loss', 0) or 0:.4f}")
    if maps:
        label += (f"  {metric} {maps[-1][1] * 100:.2f}% "
                  f"(best {max(m for _, m in maps) * 100:.2f}%)")
    cv2.putText(img, label, (x0, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "avg loss", (x0 + 5, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 0, 0), 1)
    return img
