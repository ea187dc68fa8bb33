"""Images turned by their EXIF orientation: OpenCV's IMREAD_COLOR (so Darknet's and
pydarknet's loaders) turns them; the header reader gives the size and turn OpenCV applies, the
converters fit boxes drawn on the stored pixels to the turned image, and ``data check`` names
the turned images (pydarknet.datasets.image_header)."""

import io
import json
import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from pydarknet.datasets.check import check_dataset, format_report
from pydarknet.datasets.coco import convert_coco
from pydarknet.datasets.image_header import read_header
from pydarknet.datasets.labelme import convert_labelme
from pydarknet.datasets.voc import convert_voc
from pydarknet.labels import label_path, read_labels, read_list

STORED = (60, 30)                   # width, height of the stored pixels
BOX = (10, 5, 22, 13)               # a white box on them: x0, y0, x1, y1 (pixel edges)


def _tiff(orientation, big_endian=False, kind=3):
    e = ">" if big_endian else "<"
    value = struct.pack(e + "HH", orientation, 0) if kind == 3 else \
        struct.pack(e + "I", orientation)
    return ((b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "IH", 8, 2)
            + struct.pack(e + "HHI", 0x010F, 2, 4) + b"abc\x00"      # Make, before it
            + struct.pack(e + "HHI", 0x0112, kind, 1) + value + struct.pack(e + "I", 0))


def stored_image():
    img = np.zeros((STORED[1], STORED[0], 3), np.uint8)
    x0, y0, x1, y1 = BOX
    img[y0:y1, x0:x1] = 255
    return img


def with_exif(fmt, orientation, big_endian=False, kind=3, where="first"):
    """An image file's bytes (jpg or png) holding ``stored_image()`` and an EXIF orientation."""
    data = cv2.imencode(f".{fmt}", stored_image(), [cv2.IMWRITE_JPEG_QUALITY, 100])[1]
    data, tiff = data.tobytes(), _tiff(orientation, big_endian, kind)
    if fmt == "jpg":
        segment = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
        at = 2 if where == "first" else data.index(b"\xff\xdb")    # after JFIF's APP0
        return data[:at] + segment + data[at:]
    chunk = (struct.pack(">I", len(tiff)) + b"eXIf" + tiff
             + struct.pack(">I", zlib.crc32(b"eXIf" + tiff)))
    at = data.index(b"IDAT" if where == "first" else b"IEND") - 4
    return data[:at] + chunk + data[at:]


def white_box(img):
    ys, xs = np.nonzero(img[..., 0] > 128)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("fmt,where", [("jpg", "first"), ("jpg", "after APP0"),
                                       ("png", "first"), ("png", "after the image data")])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("kind", [3, 4])          # SHORT as EXIF says; LONG as some write it
def test_header_turns_as_opencv_loads(fmt, where, big_endian, kind):
    for orientation in range(10):
        data = with_exif(fmt, orientation, big_endian, kind, where)
        loaded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        header = read_header(data)
        assert header.stored == STORED
        assert header.loaded == (loaded.shape[1], loaded.shape[0]), orientation
        assert header.turn_box(*BOX) == white_box(loaded), orientation


@pytest.mark.parametrize("where", ["directory past the first 4 kB", "thumbnail after it"])
def test_large_exif_segments(where):
    """A phone's Exif segment holds a thumbnail of tens of kB: the header reads its start
    (and the rest only when the first directory lies past it), as OpenCV finds the tag."""
    e = "<"
    entry = struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", 6, 0)
    if where.startswith("directory"):
        pad = 5000
        tiff = b"II*\x00" + struct.pack(e + "I", 8 + pad) + b"\x00" * pad + \
            struct.pack(e + "H", 1) + entry + struct.pack(e + "I", 0)
    else:
        tiff = b"II*\x00" + struct.pack(e + "IH", 8, 1) + entry + struct.pack(e + "I", 0) + \
            b"\xab" * 30000
    data = cv2.imencode(".jpg", stored_image())[1].tobytes()
    data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + \
        tiff + data[2:]
    loaded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    header = read_header(data)
    assert header.orientation == 6 and header.loaded == (loaded.shape[1], loaded.shape[0])


def test_header_of_plain_and_other_files(tmp_path):
    path = tmp_path / "a.jpg"
    assert cv2.imwrite(str(path), stored_image())
    assert read_header(str(path)).orientation == 1
    assert read_header(io.BytesIO(b"GIF89a").getvalue()) is None
    assert read_header(b"\xff\xd8\xff\xe1\x00") is None         # cut inside its first marker
    assert read_header(with_exif("jpg", 6)[:200]) is None        # cut before the frame


def _turned(orientation):
    """The stored image with an EXIF ``orientation``, as a jpg file's bytes; its box as OpenCV
    loads it turned (relative x, y, w, h)."""
    data = with_exif("jpg", orientation)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    x0, y0, x1, y1 = white_box(img)
    h, w = img.shape[:2]
    return data, np.array([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w,
                           (y1 - y0) / h])


def _coco_set(tmp_path, data, size, box):
    """A COCO json of one image (``data``'s bytes) of ``size`` with one box (corners);
    returns (json path, image folder)."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "000000000001.jpg").write_bytes(data)
    x0, y0, x1, y1 = box
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "000000000001.jpg", "width": size[0],
                    "height": size[1]}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "iscrowd": 0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": 1}],
        "categories": [{"id": 5, "name": "dog"}]}))
    return str(coco), images


def _labels(out, split="train"):
    (path,) = read_list(os.path.join(out, f"{split}.txt"))
    return read_labels(label_path(path))


def test_voc_boxes_of_the_stored_pixels_turn_with_the_image(tmp_path):
    """labelImg draws on the stored pixels and writes their size: a quarter turn is seen from
    the size, and the boxes turned to fit the image as Darknet loads it."""
    data, want = _turned(6)
    base = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
        (base / sub).mkdir(parents=True)
    (base / "ImageSets/Main/trainval.txt").write_text("p1\n")
    (base / "JPEGImages/p1.jpg").write_bytes(data)
    x0, y0, x1, y1 = BOX
    (base / "Annotations/p1.xml").write_text(
        f"<annotation><size><width>{STORED[0]}</width><height>{STORED[1]}</height></size>"
        f"<object><name>dog</name><difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin>"
        f"<ymin>{y0 + 1}</ymin><xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax></bndbox></object>"
        "</annotation>")
    out = tmp_path / "voc"
    summary, _ = convert_voc(str(tmp_path / "VOCdevkit"), str(out), sets="2007/trainval",
                             valid_sets="none", classes=["dog"], out=io.StringIO())
    assert summary.notes["boxes turned with their image's EXIF orientation"] == 1
    np.testing.assert_allclose(_labels(out)[0, 1:], want, atol=1e-6)


@pytest.mark.parametrize("annotated", ["stored", "loaded"])
def test_coco_and_labelme_boxes_fit_the_loaded_image(tmp_path, annotated):
    """A json giving the stored size (its boxes on the stored pixels) is turned; one giving
    the turned size (labelme turns the image as it loads) is kept: both fit the image."""
    data, want = _turned(8)
    header = read_header(data)
    size = header.stored if annotated == "stored" else header.loaded
    x0, y0, x1, y1 = BOX if annotated == "stored" else header.turn_box(*BOX)
    coco, images = _coco_set(tmp_path, data, size, (x0, y0, x1, y1))
    summary, _ = convert_coco(coco, str(images), str(tmp_path / "coco"), out=io.StringIO())
    np.testing.assert_allclose(_labels(tmp_path / "coco")[0, 1:], want, atol=1e-6)
    turned = summary.notes["boxes turned with their image's EXIF orientation"]
    assert turned == (annotated == "stored") and not summary.notes.get(
        "images turned by their EXIF orientation (boxes kept as drawn: check them)")

    (images / "000000000001.json").write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "imagePath": "000000000001.jpg", "imageData": None,
        "imageWidth": size[0], "imageHeight": size[1],
        "shapes": [{"label": "dog", "points": [[x0, y0], [x1, y1]],
                    "shape_type": "rectangle"}]}))
    summary, _ = convert_labelme(str(images), str(tmp_path / "labelme"), out=io.StringIO())
    np.testing.assert_allclose(_labels(tmp_path / "labelme")[0, 1:], want, atol=1e-6)
    assert not summary.notes.get("images whose size differs from the annotation's (its "
                                 "coordinates read at the annotation's size)")


def test_a_half_turn_keeps_the_boxes_and_names_the_image(tmp_path):
    """Orientation 3 keeps the size: which pixels the boxes were drawn on cannot be told, so
    they are kept as drawn and the image is named."""
    data, _ = _turned(3)
    coco, images = _coco_set(tmp_path, data, STORED, BOX)
    messages = io.StringIO()
    summary, _ = convert_coco(coco, str(images), str(tmp_path / "coco"), out=messages)
    x0, y0, x1, y1 = BOX
    assert summary.notes["images turned by their EXIF orientation (boxes kept as drawn: "
                         "check them)"] == 1
    assert "EXIF orientation 3: OpenCV loads it turned 180 degrees" in messages.getvalue()
    w, h = STORED
    np.testing.assert_allclose(_labels(tmp_path / "coco")[0, 1:],
                               [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w,
                                (y1 - y0) / h], atol=1e-6)


@pytest.mark.parametrize("images", ["decode", "header"])
def test_data_check_names_turned_images(tmp_path, images):
    (tmp_path / "turned.jpg").write_bytes(with_exif("jpg", 6))
    assert cv2.imwrite(str(tmp_path / "plain.jpg"), stored_image())
    for name in ("turned", "plain"):
        (tmp_path / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "train.txt").write_text(f"{tmp_path / 'turned.jpg'}\n{tmp_path / 'plain.jpg'}\n")
    (tmp_path / "obj.data").write_text(f"classes = 1\ntrain = {tmp_path / 'train.txt'}\n")
    report = check_dataset(str(tmp_path / "obj.data"), images=images)
    assert report.problem_count() == 0                 # a note: Darknet loads it so too
    assert report.counts["image_exif_turned"] == 1
    assert report.image_sizes == {STORED[::-1]: 1, STORED: 1}
    text = format_report(report)
    assert "turned.jpg" in text and "EXIF orientation 6" in text, text
