"""Detection in videos (pydarknet.video) and Darknet's ``detector demo`` and ``classifier demo``
commands."""

import json

import cv2
import numpy as np
import pytest

from pydarknet.detector import postprocess
from pydarknet.errors import PydarknetError
from pydarknet.eval.decode import detection_layers
from pydarknet.image import network_input, to_chw, to_rgb_float
from pydarknet.network import load
from pydarknet.video import iter_video_detections, open_capture, stream_input
from test_detect_cli import dataset, run  # noqa: F401 (the tiny detector and its data)

FRAMES, W, H = 6, 90, 50


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 6-frame MJPG video (90x50, 12 fps) and its frames as read back."""
    path = str(tmp_path_factory.mktemp("video") / "clip.avi")
    rng = np.random.default_rng(3)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 12, (W, H))
    for _ in range(FRAMES):
        writer.write(cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), np.uint8), (3, 3), 0))
    writer.release()
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == FRAMES
    return path, frames


def test_stream_preprocessing_is_darknets(dataset, video):
    """Without letterbox OpenCV's INTER_LINEAR resize (get_image_from_stream_resize), not the
    image path's Darknet resize; with letterbox Darknet's letterbox, as for images."""
    net = load(dataset / "tiny.cfg", dataset / "tiny.weights", batch=1)
    frame = video[1][0]
    want = to_chw(to_rgb_float(cv2.resize(frame, (64, 64), interpolation=cv2.INTER_LINEAR)))
    np.testing.assert_array_equal(stream_input(net, frame), want)
    assert not np.array_equal(stream_input(net, frame), network_input(frame, 64, 64))
    np.testing.assert_array_equal(stream_input(net, frame, letter_box=True),
                                  network_input(frame, 64, 64, True))


@pytest.mark.parametrize("letter_box", [False, True])
def test_every_frame_is_detected_as_one_image(dataset, video, letter_box):
    net = load(dataset / "tiny.cfg", dataset / "tiny.weights", batch=1)
    path, frames = video
    got = list(iter_video_detections(net, open_capture(path), 0.1, 0.45, letter_box))
    assert [g[0] for g in got] == list(range(1, FRAMES + 1))
    for (_, frame, dets, _), want_frame in zip(got, frames):
        np.testing.assert_array_equal(frame, want_frame)
        net.predict(stream_input(net, want_frame, letter_box)[None])
        want = postprocess(net, [(W, H)], 0.1, 0.45, letter_box, None, None,
                           detection_layers(net))[0]
        assert dets.to_list(0.1) == want.to_list(0.1)
    assert len(list(iter_video_detections(net, open_capture(path), max_frames=2))) == 2


def test_detector_demo_writes_the_video_frames_and_json(dataset, video, tmp_path, capsys):
    d, (path, frames) = dataset, video
    out, js, prefix = tmp_path / "out.avi", tmp_path / "d.json", tmp_path / "frame"
    code, stdout, err = run(capsys, "detector", "demo", d / "obj.data", d / "tiny.cfg",
                            d / "tiny.weights", path, "-out_filename", out, "-json_file_output",
                            js, "-prefix", prefix, "-dont_show", "-ext_output", "-thresh", 0.1)
    assert code == 0, err
    assert stdout.startswith(f"Video stream: {W} x {H}\n")
    assert stdout.count("Objects:") == FRAMES and "FPS:" in stdout
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)) == (FRAMES, 12)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    written = json.loads(js.read_text())
    assert [f["frame_id"] for f in written] == list(range(1, FRAMES + 1))
    assert all("filename" not in f for f in written)       # (AB's demo writes none)
    assert sorted(p.name for p in tmp_path.glob("frame_*.jpg")) == [
        f"frame_{i:08d}.jpg" for i in range(1, FRAMES + 1)]
    assert f"{FRAMES} frames in" in err


def test_detector_demo_streams_to_browsers_and_json_readers(dataset, video, tmp_path, capsys,
                                                           monkeypatch):
    """-mjpeg_port serves the frames with boxes, -json_port each frame's detections (what
    -json_file_output writes); the servers listen before the video opens."""
    import pydarknet.video as video_module
    from test_http_stream import Reader, free_port, jpeg_parts
    ports, readers, opened = (free_port(), free_port()), [], video_module.open_capture

    def open_after_clients_came(source):
        for port in ports:
            readers.append(Reader(port))
            readers[-1].wait_header()
        return opened(source)

    monkeypatch.setattr(video_module, "open_capture", open_after_clients_came)
    d, (path, _) = dataset, video
    js = tmp_path / "d.json"
    code, _, err = run(capsys, "detector", "demo", d / "obj.data", d / "tiny.cfg",
                       d / "tiny.weights", path, "-mjpeg_port", ports[0], "-json_port",
                       ports[1], "-json_file_output", js, "-thresh", 0.1)
    assert code == 0, err
    assert len(readers) == 2 and "MJPEG stream on http://localhost:" in err
    images = jpeg_parts(readers[0].finish()[1])
    assert images and all(img.shape == (H, W, 3) for img in images)
    streamed = json.loads(readers[1].finish()[1])
    assert streamed == json.loads(js.read_text())
    assert [f["frame_id"] for f in streamed] == list(range(1, FRAMES + 1))
    assert any(f["objects"] for f in streamed)


def test_an_interrupted_demo_keeps_what_it_wrote(dataset, video, tmp_path, capsys,
                                                 monkeypatch):
    """Ctrl-C (a camera runs until then) ends the demo as the end of the video would: the
    JSON file is a whole array and the video holds the frames so far."""
    import pydarknet.video as video_module
    detections = video_module.iter_video_detections

    def interrupted_after_two(*args, **kwargs):
        for k, item in enumerate(detections(*args, **kwargs)):
            if k == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(video_module, "iter_video_detections", interrupted_after_two)
    d, (path, _) = dataset, video
    out, js = tmp_path / "out.avi", tmp_path / "d.json"
    code, _, err = run(capsys, "detector", "demo", d / "obj.data", d / "tiny.cfg",
                       d / "tiny.weights", path, "-out_filename", out, "-json_file_output", js)
    assert code == 0 and "interrupted" in err and "2 frames in" in err
    assert [f["frame_id"] for f in json.loads(js.read_text())] == [1, 2]
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 2


def test_demo_benchmark_time_limit_and_web_hook(dataset, video, tmp_path, capsys):
    """-benchmark detects the first frame again and again (drawing nothing); -time_limit_sec
    ends it; -http_post_host posts each frame's objects as AB's text (once with a time
    limit); -s and -hier are accepted."""
    import http.server
    import threading
    posts = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            posts.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.HTTPServer(("localhost", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    d, (path, _) = dataset, video
    js = tmp_path / "d.json"
    try:
        code, stdout, err = run(capsys, "detector", "demo", d / "obj.data", d / "tiny.cfg",
                                d / "tiny.weights", path, "-benchmark", "-time_limit_sec", 1,
                                "-json_file_output", js, "-thresh", 0.1, "-http_post_host",
                                f"localhost:{hook.server_port}/hook/1", "-s", 2, "-hier", 0.3)
    finally:
        hook.shutdown()
    assert code == 0, err
    assert "time limit of 1 s reached" in err
    written = json.loads(js.read_text())
    assert len(written) > FRAMES                          # the first frame, again and again
    assert all(f["objects"] == written[0]["objects"] for f in written)
    assert len(posts) == 1
    where, kind, body = posts[0]
    assert (where, kind) == ("/hook/1", "text/plain")
    lines = body.split("\n")
    names = (d / "names").read_text().split()
    assert lines[0] in {f"{n}, id: {k}" for k, n in enumerate(names)}
    assert lines[-4:-2] == ["time:", lines[-3]] and lines[-2:] == ["videosource:", path]


def test_a_web_hook_that_does_not_answer_is_a_warning(dataset, video, capsys):
    import socket
    d, (path, _) = dataset, video
    with socket.socket() as closed:        # bound, not listening: the POST is refused
        closed.bind(("localhost", 0))
        port = closed.getsockname()[1]
        code, _, err = run(capsys, "detector", "demo", d / "obj.data", d / "tiny.cfg",
                           d / "tiny.weights", path, "--frames", 2, "-thresh", 0.1,
                           "-http_post_host", f"localhost:{port}/x")
    assert code == 0 and f"warning: -http_post_host localhost:{port}/x: not sent" in err


def test_detector_demo_names_what_it_cannot_open(dataset, tmp_path, capsys):
    d = dataset
    code, _, err = run(capsys, "detector", "demo", d / "obj.data", d / "tiny.cfg",
                       d / "tiny.weights", tmp_path / "nope.mp4")
    assert code != 0 and "cannot open the video '" in err and "nope.mp4'" in err
    with pytest.raises(PydarknetError, match="cannot open the video camera 7"):
        open_capture("7")


def test_classifier_demo_prints_each_frames_top_classes(video, tmp_path, capsys):
    """Darknet's classifier demo: each frame resized to the network (Darknet's resize, as
    get_image_from_stream_cpp + resize_image), its top classes printed and drawn."""
    from pydarknet.eval.classify import image_scores
    from pydarknet.network import load_cfg_text
    from test_detect_cli import CLS_CFG
    path, frames = video
    (tmp_path / "c.cfg").write_text(CLS_CFG)
    net = load_cfg_text(CLS_CFG, batch=1)
    net.save_weights(tmp_path / "c.weights")
    (tmp_path / "names").write_text("red\ngreen\nblue\n")
    (tmp_path / "c.data").write_text(f"classes = 3\nnames = {tmp_path / 'names'}\ntop = 2\n")
    out = tmp_path / "out.avi"
    code, stdout, err = run(capsys, "classifier", "demo", tmp_path / "c.data",
                            tmp_path / "c.cfg", tmp_path / "c.weights", path, "--frames", 4,
                            "-out_filename", out)
    assert code == 0, err
    blocks = [b for b in stdout.strip().split("\n\n") if b.startswith("Frame ")]
    assert len(blocks) == 4
    scores = image_scores(net, frames[0], "crop")
    best = int(np.argmax(scores))
    first = blocks[0].splitlines()
    assert len(first) == 3 and first[1] == f"{scores[best] * 100:.1f}%: " \
        f"{['red', 'green', 'blue'][best]}"
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    # -benchmark: the first frame again and again; -benchmark_layers: then the layer table
    code, stdout, err = run(capsys, "classifier", "demo", tmp_path / "c.data",
                            tmp_path / "c.cfg", tmp_path / "c.weights", path, "--frames",
                            FRAMES + 3, "-benchmark_layers")
    assert code == 0, err
    blocks = [b for b in stdout.strip().split("\n\n") if b.startswith("Frame ")]
    assert len(blocks) == FRAMES + 3
    assert {tuple(b.splitlines()[1:]) for b in blocks} == {tuple(first[1:])}
    assert "ms" in stdout.split("\n\n")[-1]
