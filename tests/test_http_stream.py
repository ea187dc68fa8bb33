"""Darknet's -mjpeg_port and -json_port streams (pydarknet.http_stream), the demo's
-json_file_output written a frame at a time, and the training chart's stream."""

import json
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from pydarknet.errors import PydarknetError
from pydarknet.http_stream import JsonArrayFile, JsonServer, MjpegServer


def free_port():
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class Reader:
    """A client that connects as a browser does and reads until the server closes."""

    def __init__(self, port):
        self.sock = socket.create_connection(("localhost", port), timeout=20)
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.data = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            part = self.sock.recv(65536)
            if not part:
                break
            self.data += part
        self.sock.close()

    def wait_header(self):
        """Until the server's header came: from then on the client gets every frame."""
        deadline = time.time() + 10
        while b"\r\n\r\n" not in self.data:
            assert time.time() < deadline and self.thread.is_alive(), "no header came"
            time.sleep(0.01)

    def finish(self):
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the server did not close the connection"
        head, _, body = self.data.partition(b"\r\n\r\n")
        return head.decode(), body


def wait_for_clients(server, n):
    deadline = time.time() + 10
    while server.client_count < n:
        assert time.time() < deadline, "the client was not accepted"
        time.sleep(0.01)


def jpeg_parts(body):
    """The images of a multipart/x-mixed-replace body with boundary mjpegstream."""
    images = []
    for part in body.split(b"--mjpegstream\r\n")[1:]:
        head, _, rest = part.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        assert fields["Content-Type"] == "image/jpeg"
        size = int(fields["Content-Length"])
        images.append(cv2.imdecode(np.frombuffer(rest[:size], np.uint8), cv2.IMREAD_COLOR))
    return images


def test_mjpeg_stream_is_what_a_browser_reads():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = (0, 0, 255)
    with MjpegServer(free_port()) as server:
        server.write(frame)                 # no client yet: nothing to do
        reader = Reader(server.port)
        wait_for_clients(server, 1)
        for _ in range(3):
            server.write(frame)
            time.sleep(0.05)
    head, body = reader.finish()
    assert head.startswith("HTTP/1.0 200 OK\r\n")
    assert "Content-Type: multipart/x-mixed-replace; boundary=mjpegstream" in head
    images = jpeg_parts(body)
    assert 1 <= len(images) <= 3              # a slow reader gets the newest only
    assert images[-1].shape == frame.shape
    assert np.abs(images[-1].astype(int) - frame).mean() < 8


def test_json_stream_is_one_array_of_the_frames_after_the_client_came():
    frames = [{"frame_id": k, "objects": [{"class_id": 0, "name": "a", "confidence": 0.5}]}
              for k in range(1, 5)]
    with JsonServer(free_port()) as server:
        server.write(frames[0])
        first, second = Reader(server.port), None
        wait_for_clients(server, 1)
        server.write(frames[1])
        server.write(frames[2])
        second = Reader(server.port)
        wait_for_clients(server, 2)
        server.write(frames[3])
    head, body = first.finish()
    assert "Content-Type: application/json" in head
    assert json.loads(body) == frames[1:]
    assert json.loads(second.finish()[1]) == frames[3:]


def test_a_client_that_leaves_is_dropped():
    with JsonServer(free_port()) as server:
        sock = socket.create_connection(("localhost", server.port))
        wait_for_clients(server, 1)
        sock.close()
        deadline = time.time() + 10
        while server.client_count and time.time() < deadline:
            server.write({"frame_id": 1, "objects": []})
            time.sleep(0.02)
        assert server.client_count == 0


def test_a_closed_server_frees_its_port():
    server = JsonServer(free_port())
    port = server.port
    server.close()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("localhost", port), timeout=2)
    JsonServer(port).close()                 # the port can be taken again


def test_a_port_in_use_says_so():
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PydarknetError, match=rf"-mjpeg_port {port}: cannot listen there"):
            MjpegServer(port)
    with pytest.raises(PydarknetError, match="-json_port 70000: a port is 0..65535"):
        JsonServer(70000)


def test_json_file_keeps_the_frames_written_before_an_interruption(tmp_path):
    path = tmp_path / "out.json"
    frames = [{"frame_id": k, "objects": []} for k in (1, 2)]
    out = JsonArrayFile(path)
    out.write(frames[0])
    assert json.loads(path.read_text() + "\n]") == frames[:1]     # on disk already
    out.write(frames[1])
    out.close()
    assert json.loads(path.read_text()) == frames
    with JsonArrayFile(tmp_path / "empty.json"):
        pass
    assert json.loads((tmp_path / "empty.json").read_text()) == []
    with pytest.raises(PydarknetError, match="cannot write the JSON output"):
        JsonArrayFile(tmp_path / "no" / "such" / "folder.json")
