"""Regenerate tests/data/darknet_python.json: what AB Darknet's own Python API (darknet.py
over libdarknet.so) returns on tests/test_detect_cli.py's detector and images, the oracle of
tests/test_darknet_api.py (pydarknet.darknet).

    # AB Darknet (commit 59596d7, as the reference data), CPU library:
    git clone https://github.com/AlexeyAB/darknet && cd darknet && make LIBSO=1
    python tools/darknet_python_oracle.py path/to/darknet

For each image: ``resized``, AB's darknet_images.py way (cv2 to RGB, cv2.resize to the
network's size, copy_image_from_bytes, detect_image at thresh 0.25), and for the PNG images
``loaded`` (load_image at its own size, detect_image at thresh 0.1, nms 0.3: the network's
resize; JPEG is left out because a library built without OpenCV decodes it with stb_image,
whose pixels differ from OpenCV's a little); and ``batch``: darknet_images.py's
batch_detection on two images of one size (network_predict_batch, do_nms_obj,
remove_negatives).
"""

import json
import pathlib
import sys
import tempfile

import cv2

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "tests" / "data" / "darknet_python.json"
IMAGES = 6
BATCH = (1, 7)            # two images of one size (90 x 50)


def main(darknet_dir):
    from test_darknet_api import detect_resized
    from test_detect_cli import make_dataset
    sys.path.insert(0, str(pathlib.Path(darknet_dir).resolve()))
    import darknet           # AB's darknet.py, beside its libdarknet.so
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(tmp)
        network, names, _ = darknet.load_network(str(root / "tiny.cfg"), str(root / "obj.data"),
                                                 str(root / "tiny.weights"))
        for path in (root / "valid.txt").read_text().split()[:IMAGES]:
            first, _ = detect_resized(darknet, network, names, path)
            second = None
            if path.endswith(".png"):   # (a LIBSO build without OpenCV decodes JPEG otherwise)
                im = darknet.load_image(path.encode(), 0, 0)
                second = darknet.detect_image(network, names, im, thresh=0.1, nms=0.3)
                darknet.free_image(im)
            out.append({"image": pathlib.Path(path).name, "resized": first, "loaded": second})
            print(f"{pathlib.Path(path).name}: {len(first)} and {len(second or [])} "
                  f"detections")
        # darknet_images.py's batch mode (its batch_detection, with ctypes' POINTER, which
        # AB's darknet.py does not export): two images of one size, a batch-2 network
        import ctypes
        import darknet_images
        network, names, colors = darknet.load_network(
            str(root / "tiny.cfg"), str(root / "obj.data"), str(root / "tiny.weights"), 2)
        paths = (root / "valid.txt").read_text().split()
        images = [cv2.imread(paths[k]) for k in BATCH]
        array = darknet_images.prepare_batch(images, network)
        pointer = array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        im = darknet.IMAGE(images[0].shape[1], images[0].shape[0], 3, pointer)
        pairs = darknet.network_predict_batch(network, im, 2, images[0].shape[1],
                                              images[0].shape[0], 0.25, .5, None, 0, 0)
        batch = []
        for k in range(2):
            darknet.do_nms_obj(pairs[k].dets, pairs[k].num, len(names), 0.45)
            batch.append(darknet.remove_negatives(pairs[k].dets, names, pairs[k].num))
        darknet.free_batch_detections(pairs, 2)
        print(f"batch: {[len(b) for b in batch]} detections")
    OUT.write_text(json.dumps({"images": out, "batch": batch}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
