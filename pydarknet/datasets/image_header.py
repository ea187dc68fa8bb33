"""An image file's size and EXIF orientation from its header, without decoding its pixels.

OpenCV's ``imread(IMREAD_COLOR)`` (so AB's Darknet, which leaves IMREAD_IGNORE_ORIENTATION
out, and pydarknet's training, detection and mAP) turns or mirrors a JPEG or PNG by its EXIF
orientation (2-8) before anything else sees it: a phone's portrait photo stored 4032x3024
with orientation 6 is a 3024x4032 image to Darknet. Relative labels must describe the image
so turned; sizes here are of the image as loaded unless they say ``stored``.

    header = read_header("IMG_0001.jpg")       # ImageHeader(stored=(4032, 3024), orientation=6)
    header.loaded                              # (3024, 4032)
    header.turn_box(x0, y0, x1, y1)            # stored-pixel corners -> loaded-image corners
"""

import dataclasses
import io
import struct

__all__ = ["ImageHeader", "read_header", "image_size_from_header", "ORIENTATIONS"]

_EXIF_HEAD = 4096           # bytes of an Exif segment read first

# EXIF orientation -> what OpenCV does to the stored pixels (checked against its imdecode)
ORIENTATIONS = {1: "as stored", 2: "mirrored left-right", 3: "turned 180 degrees",
                4: "mirrored top-bottom", 5: "transposed (mirrored across its diagonal)",
                6: "turned 90 degrees clockwise", 7: "transversed (mirrored across its "
                                                        "anti-diagonal)",
                8: "turned 90 degrees counter-clockwise"}


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    stored: tuple           # (width, height) of the pixels as stored in the file
    orientation: int = 1    # EXIF orientation OpenCV applies (1: none)

    @property
    def loaded(self):
        """(width, height) of the image as OpenCV's IMREAD_COLOR returns it."""
        w, h = self.stored
        return (h, w) if self.orientation >= 5 else (w, h)

    @property
    def turned(self):
        return self.orientation != 1

    def describe(self):
        w, h = self.loaded
        return (f"EXIF orientation {self.orientation}: OpenCV loads it "
                f"{ORIENTATIONS[self.orientation]}, as {w}x{h} (stored "
                f"{self.stored[0]}x{self.stored[1]})")

    def turn_point(self, x, y):
        """A point of the stored pixels (continuous coordinates) in the loaded image."""
        w, h = self.stored
        o = self.orientation
        if o >= 5:      # a quarter turn or a diagonal mirror: the axes swap
            x, y = y, x
            w, h = h, w
            flip_x, flip_y = o in (6, 7), o in (7, 8)
        else:
            flip_x, flip_y = o in (2, 3), o in (3, 4)
        return (w - x if flip_x else x), (h - y if flip_y else y)

    def turn_box(self, x0, y0, x1, y1):
        """Corners (x0, y0, x1, y1) of a box on the stored pixels -> on the loaded image."""
        (ax, ay), (bx, by) = self.turn_point(x0, y0), self.turn_point(x1, y1)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def read_header(source):
    """The :class:`ImageHeader` of a JPEG, PNG or BMP file (a path or the file's bytes); None
    for another format or a header that makes no sense (the caller decodes the image then)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _read(io.BytesIO(bytes(source)))
    with open(source, "rb") as f:
        return _read(f)


def image_size_from_header(source):
    """(width, height) of the image as loaded (EXIF orientation applied), from the header of a
    JPEG, PNG or BMP file; None for another format or a header that makes no sense."""
    header = read_header(source)
    return header.loaded if header else None


def _read(f):
    head = f.read(26)
    if head[:2] == b"\xff\xd8":
        return _jpeg(f)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return _sized((width, height), _png_orientation(f))
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return _sized((width, abs(height)))     # a negative height: rows stored top-down
    return None


def _sized(stored, orientation=1):
    return ImageHeader(stored, orientation) if stored[0] > 0 and stored[1] > 0 else None


def _jpeg(f):
    """Markers from the start of image to the frame header: its size, and the orientation
    of the first Exif APP1 segment before it."""
    f.seek(2)
    orientation = None
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            return None
        marker = f.read(1)
        while marker == b"\xff":                # fill bytes
            marker = f.read(1)
        if not marker:
            return None
        m = marker[0]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:      # markers without a length
            continue
        field = f.read(2)
        if len(field) < 2 or struct.unpack(">H", field)[0] < 2:
            return None
        length = struct.unpack(">H", field)[0] - 2
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):     # start of frame
            frame = f.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return _sized((width, height), orientation or 1)
        if m == 0xE1 and orientation is None:
            # a phone's Exif holds a thumbnail of tens of kB after the first directory:
            # its start is read, the rest only when the directory reaches past it
            body = f.read(min(length, _EXIF_HEAD))
            if body.startswith(b"Exif\x00\x00"):
                orientation = _tiff_orientation(body[6:], complete=len(body) == length)
                if orientation is None:
                    body += f.read(length - len(body))
                    orientation = _tiff_orientation(body[6:], complete=True)
            f.seek(length - len(body), 1)
        else:
            f.seek(length, 1)


def _png_orientation(f):
    """The orientation of a PNG's eXIf chunk (OpenCV honours it before or after the image
    data); the chunks are skipped by their lengths, not read."""
    f.seek(8)
    while True:
        field = f.read(8)
        if len(field) < 8:
            return 1
        length, kind = struct.unpack(">I4s", field)
        if kind == b"eXIf":
            return _tiff_orientation(f.read(length))
        if kind == b"IEND":
            return 1
        f.seek(length + 4, 1)                   # the data and its CRC


def _tiff_orientation(tiff, complete=True):
    """Tag 0x0112 of a TIFF structure's first directory (EXIF's IFD0): 1..8, else 1; None
    when ``tiff`` is only the structure's start (not ``complete``) and the directory reaches
    past it."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(bytes(tiff[:4]))
    if order is None or len(tiff) < 8:
        return 1
    at = struct.unpack(order + "I", tiff[4:8])[0]
    if at + 2 > len(tiff):
        return 1 if complete else None
    for i in range(struct.unpack(order + "H", tiff[at:at + 2])[0]):
        entry = at + 2 + 12 * i
        if entry + 12 > len(tiff):
            if not complete:
                return None
            break
        if struct.unpack(order + "H", tiff[entry:entry + 2])[0] == 0x0112:
            # read as a SHORT whatever the entry's type says, as OpenCV reads it (a LONG
            # counts in little-endian files only)
            value = struct.unpack(order + "H", tiff[entry + 8:entry + 10])[0]
            return value if 1 <= value <= 8 else 1
    return 1
