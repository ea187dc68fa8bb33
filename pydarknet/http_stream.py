"""Darknet's HTTP streams (AB's http_stream.cpp): ``-mjpeg_port`` serves images as an MJPEG
stream a web browser shows (``http://localhost:PORT``), ``-json_port`` serves each frame's
detections as one endless JSON array, ``-http_post_host`` posts them to a web hook; and the
JSON array file ``-json_file_output`` writes.

A server listens from the moment it is made; every client that connects gets the HTTP header
and from then on every frame written (MJPEG: only the newest, when it falls behind; JSON: every
frame, and it is dropped when it falls more than ``JSON_BACKLOG`` frames behind). Sending never
waits for a client: each has its own thread. ``close()`` ends the JSON array for each client
and closes every connection.
"""

import collections
import http.client
import json
import socket
import threading

from .errors import PydarknetError

__all__ = ["MjpegServer", "JsonServer", "JsonArrayFile", "frame_json", "http_post"]

JSON_BACKLOG = 1000
_HEADER = ("HTTP/1.0 200 OK\r\nServer: pydarknet\r\nConnection: close\r\nMax-Age: 0\r\n"
           "Expires: 0\r\nCache-Control: no-cache, private\r\nPragma: no-cache\r\n"
           "Content-Type: {}\r\n\r\n")


def frame_json(frame_id, objects, filename=None):
    """One frame's detections as AB's detection_to_json writes them: frame_id, filename (when
    given), objects [{class_id, name, relative_coordinates {center_x, center_y, width,
    height}, confidence}]."""
    frame = {"frame_id": frame_id}
    if filename is not None:
        frame["filename"] = filename
    frame["objects"] = objects
    return frame


class _Client:
    """One connection: a thread that sends what it is given, in order."""

    def __init__(self, sock, header, latest_only):
        self.sock, self.header = sock, header
        self.queue = collections.deque(maxlen=1 if latest_only else None)
        self.latest_only = latest_only
        self.cond = threading.Condition()
        self.closing = self.gone = self.had_one = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def push(self, data):
        with self.cond:
            if not self.latest_only and len(self.queue) >= JSON_BACKLOG:
                self.gone = True          # it reads too slowly to keep up: let it go
            self.queue.append(data)
            self.cond.notify()

    def close(self, last=b""):
        with self.cond:
            if last:
                self.queue.append(last)
            self.closing = True
            self.cond.notify()

    def _run(self):
        try:
            self._read_request()
            self.sock.sendall(self.header)
            while True:
                with self.cond:
                    while not self.queue and not self.closing and not self.gone:
                        self.cond.wait()
                    if self.gone or not self.queue:
                        break
                    data = self.queue.popleft()
                self.sock.sendall(data)
        except OSError:
            pass
        finally:
            self.gone = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def _read_request(self):
        """Reads the client's request (a browser sends one; it is not needed), so that
        closing the connection later does not reset it; gives up after a second."""
        self.sock.settimeout(1.0)
        got = b""
        try:
            while b"\r\n\r\n" not in got and len(got) < 65536:
                part = self.sock.recv(4096)
                if not part:
                    break
                got += part
        except OSError:
            pass
        self.sock.settimeout(None)


class _StreamServer:
    """Listens on ``port`` (all interfaces, as Darknet) and hands every frame to each client."""

    content_type = None
    latest_only = False
    option = None

    def __init__(self, port, host=""):
        if not 0 <= int(port) <= 65535:
            raise PydarknetError(f"{self.option} {port}: a port is 0..65535")
        try:
            self.sock = socket.create_server((host, int(port)))
        except OSError as e:
            raise PydarknetError(f"{self.option} {port}: cannot listen there ({e.strerror}); "
                                 f"choose another port") from None
        self.port = self.sock.getsockname()[1]
        self.clients, self.lock = [], threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        header = _HEADER.format(self.content_type).encode()
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return                    # closed
            client = _Client(sock, header + self._opening(), self.latest_only)
            with self.lock:       # listed before its header goes out: it gets what follows;
                if self.closed:   # started here, so that close() joins only started threads
                    client.close()
                else:
                    self.clients.append(client)
                client.thread.start()

    def _opening(self):
        return b""

    def _broadcast(self, first, later):
        """``first`` to the clients that have had nothing yet, ``later`` to the others."""
        with self.lock:
            self.clients = [c for c in self.clients if not c.gone]
            for c in self.clients:
                c.push(later if c.had_one else first)
                c.had_one = True

    @property
    def client_count(self):
        with self.lock:
            return sum(not c.gone for c in self.clients)

    def close(self, last=b""):
        with self.lock:
            self.closed = True
            clients, self.clients = self.clients, []
        try:               # (Linux wakes a thread blocked in accept() on shutdown, not close)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=2.0)
        for c in clients:
            c.close(last)
        for c in clients:
            c.thread.join(timeout=2.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class MjpegServer(_StreamServer):
    """``-mjpeg_port``: images (BGR uint8, as OpenCV holds them) as JPEG parts of a
    multipart/x-mixed-replace stream, at ``quality`` (Darknet: 40 for the demo, 70 for the
    training chart)."""

    content_type = "multipart/x-mixed-replace; boundary=mjpegstream"
    latest_only = True
    option = "-mjpeg_port"

    def __init__(self, port, quality=40, host=""):
        if not 1 <= int(quality) <= 100:
            raise PydarknetError(f"JPEG quality {quality}: expected 1..100")
        self.quality = int(quality)
        super().__init__(port, host)

    def write(self, image_bgr):
        if self.closed or not self.client_count:
            return
        import cv2
        ok, jpeg = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise PydarknetError(f"cannot encode an image of shape {list(image_bgr.shape)} "
                                 f"as JPEG")
        part = (f"--mjpegstream\r\nContent-Type: image/jpeg\r\nContent-Length: {jpeg.size}"
                f"\r\n\r\n").encode() + jpeg.tobytes() + b"\r\n"
        self._broadcast(part, part)


class JsonServer(_StreamServer):
    """``-json_port``: each client reads one JSON array that grows by a frame (an object, see
    :func:`frame_json`) at a time, from the first frame after it connected; closed with ``]``
    when the server closes."""

    content_type = "application/json"
    option = "-json_port"

    def _opening(self):
        return b"[\n"

    def write(self, frame):
        if self.closed:
            return
        text = json.dumps(frame, indent=1).encode()
        self._broadcast(text, b", \n" + text)

    def close(self):
        super().close(b"\n]\n")


class JsonArrayFile:
    """``-json_file_output``: a JSON array written a frame at a time, so that what ran before
    an interruption is kept (the array is closed by ``close()``, also on an exception)."""

    def __init__(self, path):
        self.path, self.count = path, 0
        try:
            self.file = open(path, "w", encoding="utf-8")
        except OSError as e:
            raise PydarknetError(f"{path}: cannot write the JSON output ({e.strerror})") from None
        self.file.write("[\n")

    def write(self, frame):
        self.file.write((", \n" if self.count else "") + json.dumps(frame, indent=1))
        self.file.flush()
        self.count += 1

    def close(self):
        if not self.file.closed:
            self.file.write("\n]\n")
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def http_post(target, text, timeout=3.0):
    """AB's ``-http_post_host``: ``text`` as a text/plain POST to ``HOST[:PORT]/PATH`` (port 80
    unless given, as AB). Returns None when it was sent, else why not."""
    host, _, path = target.partition("/")
    try:
        conn = http.client.HTTPConnection(host, timeout=timeout)
    except http.client.InvalidURL as e:
        return str(e)
    try:
        conn.request("POST", "/" + path, body=text.encode(),
                     headers={"Content-Type": "text/plain"})
        conn.getresponse().read()
        return None
    except (OSError, http.client.HTTPException) as e:
        return str(e) or type(e).__name__
    finally:
        conn.close()
