"""Detection in video files and camera streams, as Darknet's ``detector demo``.

    import pydarknet
    from pydarknet.video import open_capture, iter_video_detections
    net = pydarknet.load("cfg/yolov4-tiny.cfg", "yolov4-tiny.weights", batch=1)
    for i, frame, dets, seconds in iter_video_detections(net, open_capture("street.mp4")):
        print(i, dets.to_list(0.25))

Darknet's stream pre-processing differs from its image one: without letterbox a frame is
resized by OpenCV (``cv::resize``, INTER_LINEAR) before BGR -> RGB and /255
(``get_image_from_stream_resize``), not by Darknet's own bilinear resize; with letterbox
(``letter_box=1`` or ``-letter_box``) it is Darknet's letterbox, as for images. Decoding and
NMS (0.45, the cfg's ``nms_kind``) are the image path's.

Darknet's ``-avgframes N`` (default 3) was meant to average the [yolo] outputs of N frames,
but its demo sets ``mean_alpha`` on a copy of each layer, so nothing is averaged; what is left
is that each frame's boxes are drawn on the frame N/2 before it. pydarknet draws each frame's
own boxes.
"""

import time

import cv2
import numpy as np

from .detector import postprocess
from .errors import PydarknetError
from .eval.decode import detection_layers
from .image import as_channels, network_input, to_chw, to_rgb_float


def open_capture(source):
    """cv2.VideoCapture of a video file, stream URL or camera index (an int, or a string of
    digits as Darknet's ``-c``); a PydarknetError saying what could not be opened."""
    if isinstance(source, str) and source.isdigit():
        source = int(source)
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        what = f"camera {source}" if isinstance(source, int) else f"'{source}'"
        raise PydarknetError(f"cannot open the video {what}: OpenCV's VideoCapture could not "
                             f"read it (a missing file, a format without a decoder, or no such "
                             f"camera)")
    return cap


def stream_input(network, frame_bgr, letter_box=False, out=None):
    """One frame (uint8 BGR) -> float32 CxHxW, Darknet's stream pre-processing."""
    n = network.net
    frame = as_channels(frame_bgr, n.channels or 3)
    if letter_box:
        return network_input(frame, n.width, n.height, True, out=out)
    sized = cv2.resize(frame, (n.width, n.height), interpolation=cv2.INTER_LINEAR)
    x = to_chw(to_rgb_float(sized))
    if out is None:
        return x
    out[...] = x
    return out


def iter_video_detections(network, capture, thresh=0.25, nms=0.45, letter_box=None,
                          max_frames=None, nms_kind=None, beta_nms=None):
    """Yield (frame number from 1, frame_bgr, Detections after NMS, forward seconds) for each
    frame of ``capture`` (a cv2.VideoCapture) until it ends or ``max_frames``."""
    if letter_box is None:
        letter_box = bool(network.net.letter_box)
    heads = detection_layers(network)
    n = network.net
    x = np.empty((1, n.channels or 3, n.height, n.width), np.float32)
    count = 0
    while max_frames is None or count < max_frames:
        ok, frame = capture.read()
        if not ok or frame is None or frame.size == 0:
            return
        count += 1
        stream_input(network, frame, letter_box, out=x[0])
        t0 = time.perf_counter()
        network.predict(x)
        seconds = time.perf_counter() - t0
        size = (frame.shape[1], frame.shape[0])
        dets = postprocess(network, [size], thresh, nms, letter_box, nms_kind, beta_nms,
                            heads)[0]
        yield count, frame, dets, seconds


def video_writer(path, fps, size):
    """A cv2.VideoWriter for ``path`` at the source's frame rate (Darknet's DIVX for .avi,
    mp4v for .mp4/.mov/.m4v, MJPG otherwise); a PydarknetError if OpenCV cannot write it."""
    ext = path.lower().rsplit(".", 1)[-1] if "." in path else ""
    codec = {"avi": "DIVX", "mp4": "mp4v", "mov": "mp4v", "m4v": "mp4v"}.get(ext, "MJPG")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened() and codec != "MJPG":
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise PydarknetError(f"cannot write the video '{path}': OpenCV has no encoder for it "
                             f"here (try a .avi name)")
    return writer


def source_fps(capture):
    """The capture's frame rate, or Darknet's default of 25 where it gives none."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if np.isfinite(fps) and fps > 0 else 25.0


class FirstFrameAgain:
    """Darknet's ``demo -benchmark``: the capture's first frame, read again and again (the
    network's own speed, without decoding)."""

    def __init__(self, capture):
        self.capture, self.frame = capture, None

    def read(self):
        if self.frame is None:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return False, None
            self.frame = frame
        return True, self.frame.copy()

    def get(self, prop):
        return self.capture.get(prop)

    def release(self):
        self.capture.release()


class FramesOut:
    """A video file that takes frames as they come (made at the first one's size, the
    source's frame rate); ``path`` None writes nothing. A context manager: it closes the
    source ``capture`` and the file."""

    def __init__(self, path, capture):
        self.path, self.capture, self.fps = path, capture, source_fps(capture)
        self._writer = None

    def write(self, frame):
        if self.path is None:
            return
        if self._writer is None:
            self._writer = video_writer(self.path, self.fps, (frame.shape[1], frame.shape[0]))
        self._writer.write(frame)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.capture.release()
        if self._writer is not None:
            self._writer.release()
        return False

    def summary(self, frames, seconds, source):
        """The closing line (for stderr); an error when no frame could be read."""
        if not frames:
            raise PydarknetError(f"no frame could be read from {source}")
        return (f"{frames} frames in {seconds:.2f} s ({frames / seconds:.1f} frames/s)"
                + (f"; video written to {self.path}" if self.path else ""))
