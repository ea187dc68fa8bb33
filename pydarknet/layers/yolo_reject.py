"""AB's rejection of [yolo] deltas late in training ([net] options, forward_yolo_layer):

- ``num_sigmas_reject_badlabels=S``: from 3/4 of max_batches, deltas larger than a threshold
  that falls from the rolling maximum to rolling average + S rolling deviations are zeroed
  (labels the network keeps contradicting are taken as bad);
- ``badlabels_rejection_percentage=P``: from 3/4 of max_batches, deltas above an adaptive
  threshold are zeroed, the threshold moving by 0.01 a pass so that about P% of the anchors'
  deltas go;
- ``equidistant_point=E``: after iteration E, deltas below the rolling average times the
  progress from E to max_batches (times 1.4) are zeroed.

The rolling maximum, average and deviation of the nonzero deltas are the network's, shared by
its [yolo] layers in order and carried from pass to pass; as in AB they start from zero in
each run (checkpoints do not keep them).
"""

import numpy as np

f32 = np.float32


class DeltaRejection:
    def __init__(self, net):
        self.percentage = f32(net.badlabels_rejection_percentage)
        self.sigmas = f32(net.num_sigmas_reject_badlabels)
        self.equidistant = int(net.equidistant_point)
        self.rolling_max = self.rolling_avg = self.rolling_std = self.threshold = f32(0)

    @property
    def enabled(self):
        return bool(self.percentage or self.sigmas or self.equidistant)

    def __call__(self, delta, iteration, max_batches, classes):
        """Zero, in place, the deltas (float32, a [yolo] layer's whole batch) that AB's
        forward_yolo_layer rejects at ``iteration`` (updates so far) of ``max_batches``."""
        start = max_batches * 3 // 4
        late = start < iteration
        equidistant = bool(self.equidistant) and self.equidistant < iteration
        if not ((self.percentage and late) or (self.sigmas and late) or equidistant):
            return
        d = delta.reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            progress = f32(iteration - self.equidistant) / f32(max_batches - self.equidistant)
        ep_threshold = f32(float(self.rolling_avg * progress) * 1.4)
        magnitude = np.abs(d[d != 0])
        if magnitude.size:       # (AB divides by the count even when it is 0)
            cur_max = magnitude.max()
            cur_avg = f32(magnitude.sum(dtype=np.float64) / magnitude.size)
            if self.rolling_max == 0:
                self.rolling_max = cur_max
            self.rolling_max = f32(self.rolling_max * 0.99 + cur_max * 0.01)
            self.rolling_avg = f32(self.rolling_avg * 0.99 + cur_avg * 0.01)

        if self.sigmas and late:
            std0, top, avg = self.rolling_std, self.rolling_max, self.rolling_avg
            progress_bad = f32(iteration - start) / f32(start)
            values = d[d != 0]
            if values.size:
                spread = np.square((values - avg).astype(np.float64)).sum() / values.size
                self.rolling_std = f32(self.rolling_std * 0.99 + f32(np.sqrt(spread)) * 0.01)
            final = f32(avg + std0 * self.sigmas)
            threshold = max(final, f32(top - progress_bad * abs(top - final)))
            d[np.abs(d) > threshold] = 0
            ep_threshold = f32(min(final, avg) * progress)

        if self.percentage and late:
            if self.threshold == 0:
                self.threshold = self.rolling_max
            nonzero = d != 0
            rejected = nonzero & (np.abs(d) > self.threshold)
            d[rejected] = 0
            per_anchor = classes + 4 + 1
            with np.errstate(divide="ignore", invalid="ignore"):
                percent = f32(100 * (f32(rejected.sum() * per_anchor) / f32(nonzero.sum())))
            if percent > self.percentage:
                self.threshold = f32(self.threshold + 0.01)
            elif self.threshold > 0.01:
                self.threshold = f32(self.threshold - 0.01)

        if equidistant:
            d[np.abs(d) < ep_threshold] = 0
