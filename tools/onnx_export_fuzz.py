"""Random networks exported to ONNX: onnxruntime must give every layer's output pydarknet's
forward gives (1e-4 of the layer's largest value), or the export must refuse the network with
a PydarknetError. Anything else (a wrong value, a graph onnx.checker or onnxruntime rejects,
another exception) is a bug: printed with its seed, and its cfg kept.

    python tools/onnx_export_fuzz.py 0 2000 [--keep DIR] [--corpus DIR]
    python tools/onnx_export_fuzz.py 0 1000 --whole-corpus     # every corpus cfg (0..1000) once
    python tools/onnx_export_fuzz.py 0 1000 --whole-corpus --opencv   # ... and in OpenCV's DNN

Each seed takes a random network of tools/darknet_forward_oracle.py's generator (70%; its
activations then redrawn from every activation pydarknet has, since no Darknet runs here) or
a cfg of the corpus (Darknet's cfg/ folder of the reference data) at a small size, random
parameters, a random opset (13..21), batch 1 or 2, a fixed or dynamic batch, the Mish op or
its expansion, and for a detector the decoded boxes and scores, compared with pydarknet's
decode_network. A fifth of the cfgs have one option set to an edge value (0, -1, 1.5, ...):
pydarknet refuses the cfg, or builds, runs and exports it as it reads it.

Left out as overflow: networks whose values reach 1e30 or inf (a max-pool window of padding
only gives -FLT_MAX, as Darknet's): past there, inf arithmetic in another order gives NaN where
pydarknet gives a number. Known differences: ``normalize_channels`` at a pixel whose channels
sum to about 0 (x / (sum + 1e-4) magnifies the convolution's rounding, 1e-7 in onnxruntime
against pydarknet, to 1e-4; seeds 23304, 26105, 27427, 29628, 35170, 37721, 38884 and
47845 of 20000-48000, and five of 0-20000 run before the edge values were added, which now
draw other networks: 0-3000 again, all equal); a global [avgpool] over millions of values
(31537: an upsample by 99; Darknet's sequential float sum, which pydarknet keeps, drifts 0.7%
from the true mean, ReduceMean 0.1%); alpha=inf in [normalization] (31282: inf x 0).
"""

import argparse
import os
import pathlib
import re
import signal
import sys
import tempfile
import traceback
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

from cfg_mutation_fuzz import VALUES  # noqa: E402
from darknet_forward_oracle import random_cfg, randomize  # noqa: E402
from pydarknet.backend import ACTIVATIONS  # noqa: E402
from pydarknet.cfg import parse_cfg_text  # noqa: E402
from pydarknet.errors import PydarknetError  # noqa: E402
from pydarknet.network import Network  # noqa: E402

TOL = 1e-4


class Timeout(Exception):
    pass


def random_network_text(rng, corpus, more=False):
    """(cfg text, batch) of a random network or a small corpus cfg, a fifth of them with an
    option set to an edge value as tools/cfg_mutation_fuzz.py sets them."""
    text, batch = _network_text(rng, corpus, more)
    if rng.random() < 0.2:
        lines = text.splitlines()
        options = [i for i, line in enumerate(lines)
                   if "=" in line and not line.strip().startswith(("#", ";"))
                   and line.split("=")[0].strip() not in ("width", "height", "batch")]
        i = int(rng.choice(options))
        lines[i] = f"{lines[i].split('=')[0]}={rng.choice(VALUES)}"
        text = "\n".join(lines)
    return text, batch


def _network_text(rng, corpus, more=False):
    if rng.random() < 0.7 or not corpus:
        text, batch = random_cfg(rng, more=more)[:2]
        # every activation pydarknet has (the generator keeps to Darknet's CPU ones)
        text = re.sub(r"^activation=\w+$",
                      lambda m: f"activation={rng.choice(ACTIVATIONS)}"
                      if rng.random() < 0.4 else m.group(0), text, flags=re.M)
        return text, batch
    text = corpus[int(rng.integers(len(corpus)))].read_text(errors="replace")
    size = int(rng.choice([32, 64, 96]))
    for key, value in (("width", size), ("height", size), ("batch", 1), ("subdivisions", 1)):
        text = re.sub(rf"^{key}\s*=\s*\d+", f"{key}={value}", text, flags=re.M)
    return text, int(rng.choice([1, 2]))


def differences(got, net, x, decode):
    """The outputs of the graph that differ from pydarknet's (name, error, scale)."""
    from pydarknet.eval.decode import decode_network
    from pydarknet.export import HEAD_TYPES
    net.forward(x)
    # non-finite or huge values (a max-pool window of padding only is -FLT_MAX): where inf
    # arithmetic begins, the graph's order of operations is not Darknet's
    if not all(np.abs(o).max() < 1e30 for o in net.outputs[:len(net.layers)]
               if o is not None and o.size):
        return [("", "overflow", "")]
    bad = []

    def compare(name, value, want):
        want = np.asarray(want)
        if not np.isfinite(want).all():       # a decoded box's exp() overflowed
            bad.append((name, "overflow", ""))
            return
        if value.shape != want.shape:
            bad.append((name, f"shape {value.shape} != {want.shape}", ""))
            return
        scale = max(float(np.abs(want).max()), 1e-6) if want.size else 1.0
        err = float(np.abs(value - want).max()) if value.size else 0.0
        if not err <= max(TOL * scale, 1e-6):     # (1e-6: rounding of values near 0)
            bad.append((name, err, scale))

    for name, value in got.items():
        if name[-1].isdigit():
            compare(name, value, net.outputs[int(name.rsplit("_", 1)[1])])
    if decode:
        # the graph has every row of every head; decode_network those whose objectness is
        # above 0 (a [yolo] head's with new_coords=1 may be below): compared on those rows
        heads = [l for l in net.layers if l.layer_type in HEAD_TYPES]
        rows = [l.h * l.w * l.n if l.layer_type in ("yolo", "gaussian_yolo") else
                l.side * l.side * l.num if l.layer_type == "detection" else
                l.h * l.w * l.num for l in heads]
        offset = dict(zip((l.index for l in heads), np.cumsum([0] + rows[:-1])))
        for b in range(x.shape[0]):
            dets = decode_network(net, thresh=0.0, batch_index=b)
            at = np.array([offset[int(i)] for i in dets.layer], np.int64) + dets.index
            px = dets.pixel_boxes()
            corners = np.concatenate([px[:, :2] - px[:, 2:] / 2, px[:, :2] + px[:, 2:] / 2], 1)
            compare(f"boxes[{b}]", got["boxes"][b][at], corners)
            # unthresholded in the graph; decode_network keeps those above 0 (raw class
            # values of [region] softmax=0 and YOLOv1 make negative scores)
            scores = got["scores"][b][at]
            compare(f"scores[{b}]", np.where(scores > 0, scores, 0), dets.probs)
    return bad


def export_and_compare(net, x, opset=18, dynamic=False, decode=False, mish_op=True,
                       opencv=False):
    """'refused', 'overflow', 'equal' or the list of differing outputs of ``net`` exported
    (every layer an output) and run on ``x`` in onnxruntime; with ``opencv``, OpenCV's DNN
    must load the file too and give onnxruntime's outputs (a network without state inputs)."""
    import onnx
    import onnxruntime as ort
    from pydarknet.export import build_onnx_model
    last = len(net.layers) - 1
    while last > 0 and net.layers[last].layer_type == "cost":
        last -= 1
    try:
        model = build_onnx_model(net, opset=opset, batch=x.shape[0], dynamic_batch=dynamic,
                                 decode=decode, mish_op=mish_op, outputs=list(range(last + 1)))
    except PydarknetError:
        return "refused"
    onnx.checker.check_model(model, full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    for inp in session.get_inputs()[1:]:      # recurrent state: zeros, as a fresh network
        feed[inp.name] = np.zeros([x.shape[0] if isinstance(d, str) else d for d in inp.shape],
                                  np.float32)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    bad = differences(got, net, x, decode)
    if opencv and len(feed) == 1:
        bad += opencv_differences(model, x, got)
    if bad and all(b[1] == "overflow" for b in bad):
        return "overflow"
    return [b for b in bad if b[1] != "overflow"] or "equal"


def opencv_differences(model, x, want):
    """The graph outputs OpenCV's DNN gives otherwise than onnxruntime (``want``)."""
    import cv2
    import onnx
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(model, path)
        dnn = cv2.dnn.readNetFromONNX(path)
    dnn.setInput(x)
    names = list(want)
    bad = []
    for name, value in zip(names, dnn.forward(names)):
        ref = want[name]
        scale = max(float(np.abs(ref).max()), 1e-6) if ref.size else 1.0
        err = float(np.abs(value.reshape(ref.shape) - ref).max()) if ref.size else 0.0
        if not err <= max(TOL * scale, 1e-6):
            bad.append((f"opencv {name}", err, scale))
    return bad


def run_once(seed, corpus, more=False):
    """('refused' / 'not built' / 'equal' / 'overflow' or a list of differences, the cfg
    text); raises on any other failure."""
    from pydarknet.export import HEAD_TYPES
    rng = np.random.default_rng(seed)
    text, batch = random_network_text(rng, corpus, more)
    try:
        net = Network(parse_cfg_text(text, f"fuzz{seed}.cfg"), batch=batch, init=False)
    except PydarknetError:      # a corpus cfg at a size it does not fit
        return "not built", text
    if net.param_count() > 5_000_000 or net.total_bflops * batch > 3:
        raise Timeout()
    net.init_weights()
    randomize(net, rng)
    opset = int(rng.integers(13, 22))
    dynamic = bool(rng.random() < 0.3)
    decode = any(l.layer_type in HEAD_TYPES for l in net.layers) and rng.random() < 0.5
    mish_op = bool(rng.random() < 0.7)
    x = rng.random((batch,) + net.input_shape, dtype=np.float32)
    return export_and_compare(net, x, opset, dynamic, decode, mish_op), text


def corpus_network(path, sizes=(64, 96, 128, 160, 224, 256, 320)):
    """A corpus cfg at the first of ``sizes`` it builds at, batch 1, random parameters."""
    text = pathlib.Path(path).read_text(errors="replace")
    for size in sizes:
        for key, value in (("width", size), ("height", size), ("batch", 1),
                           ("subdivisions", 1)):
            text = re.sub(rf"^{key}\s*=\s*\d+", f"{key}={value}", text, flags=re.M)
        try:
            net = Network(parse_cfg_text(text, str(path)), batch=1, init=False)
        except PydarknetError as e:
            error = e
            continue
        net.init_weights()
        randomize(net, np.random.default_rng(0))
        return net
    raise error


def run_corpus(corpus, opencv=False):
    """Every corpus cfg once, decoded where it has heads; prints each verdict."""
    from pydarknet.export import HEAD_TYPES
    for path in corpus:
        try:
            net = corpus_network(path)
            x = np.random.default_rng(1).random((1,) + net.input_shape, dtype=np.float32)
            heads = any(l.layer_type in HEAD_TYPES for l in net.layers)
            verdict = export_and_compare(net, x, decode=heads, opencv=opencv)
        except PydarknetError as e:
            verdict = f"refused: {str(e)[:150]}"
        except Exception as e:  # noqa: BLE001 (the finding)
            verdict = f"{type(e).__name__}: {str(e)[:200]}"
        print(f"{path.name}: {verdict}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--keep", default="fuzz-onnx", help="folder for the failing cfgs")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "darknet-ref" / "cfg"))
    ap.add_argument("--whole-corpus", action="store_true", help="instead: the corpus cfgs "
                    "FIRST..LAST (in name order) once each, at the smallest of 64..320 each "
                    "builds at")
    ap.add_argument("--opencv", action="store_true", help="with --whole-corpus: OpenCV's DNN "
                    "loads each export too and must give onnxruntime's outputs")
    ap.add_argument("--more-layers", action="store_true", help="random networks of more "
                    "layer kinds (darknet_forward_oracle.random_cfg's more: other networks for "
                    "the same seeds)")
    a = ap.parse_args()
    corpus = sorted(pathlib.Path(a.corpus).glob("*.cfg"))
    warnings.simplefilter("ignore")
    if a.whole_corpus:
        return run_corpus(corpus[a.first:a.last], a.opencv)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(Timeout()))
    counts, seen = {}, set()
    keep = pathlib.Path(a.keep)
    for seed in range(a.first, a.last):
        signal.alarm(30)
        text = None
        try:
            verdict, text = run_once(seed, corpus, a.more_layers)
            kind = verdict if isinstance(verdict, str) else "differing"
            if kind == "differing":
                first = verdict[0]
                print(f"seed {seed}: differs, {len(verdict)} outputs, first {first[0]}: "
                      f"{first[1]} of {first[2]}", flush=True)
        except (Timeout, MemoryError):
            kind = "too big"
        except Exception as e:  # noqa: BLE001 (any other exception is the finding)
            kind = "exception"
            tb = traceback.extract_tb(e.__traceback__)[-1]
            where = (type(e).__name__, pathlib.Path(tb.filename).name, tb.lineno)
            print(f"seed {seed}: {where[0]} at {where[1]}:{where[2]}: {str(e)[:300]}"
                  + ("" if where not in seen else " (seen)"), flush=True)
            seen.add(where)
        finally:
            signal.alarm(0)
        if kind in ("differing", "exception"):
            keep.mkdir(exist_ok=True)
            if text is None:
                text = random_network_text(np.random.default_rng(seed), corpus,
                                           a.more_layers)[0]
            (keep / f"{seed}.cfg").write_text(text)
        counts[kind] = counts.get(kind, 0) + 1
    print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
