"""ONNX export (pydarknet.export): onnxruntime's outputs equal pydarknet's forward."""

import json
import pathlib
import re
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import pydarknet  # noqa: E402
from pydarknet.backend import ACTIVATIONS  # noqa: E402
from pydarknet.errors import NotSupportedError  # noqa: E402
from pydarknet.eval.decode import decode_network  # noqa: E402
from pydarknet.export import build_onnx_model  # noqa: E402
from pydarknet.network import Network, load_cfg_text  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOL = 1e-4

LAYERS_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
filters=8
size=3
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=8
size=3
pad=1
groups=2
dilation=2
batch_normalize=1
activation=mish

[convolutional]
filters=8
size=3
pad=1
stride_x=2
stride_y=1
batch_normalize=1
activation=swish

[maxpool]
size=3
stride_x=1
stride_y=2

[convolutional]
filters=16
size=1
activation=linear

[route]
layers=-1
groups=2
group_id=1

[shortcut]
from=-3
weights_type=per_channel
weights_normalization=softmax
activation=leaky

[shortcut]
from=-4,-2
weights_type=per_feature
weights_normalization=relu
activation=leaky

[avgpool]

[convolutional]
filters=8
size=1
activation=logistic

[scale_channels]
from=-3

[convolutional]
filters=8
size=3
pad=1
activation=logistic

[sam]
from=-2

[local_avgpool]
size=3
stride=2

[maxpool]
maxpool_depth=1
out_channels=3
size=1
stride=1

[route]
layers=13

[upsample]
stride=2

[upsample]
stride=-2
scale=0.5

[reorg3d]
stride=2

[reorg3d]
stride=2
reverse=1

[reorg]
stride=2

[batchnorm]

[activation]
activation=hard_mish

[dropout]
probability=0.5

[crop]
crop_width=3
crop_height=3

[connected]
output=20
batch_normalize=1
activation=leaky

[connected]
output=12
activation=linear

[softmax]
groups=3
temperature=2
"""

HEADS_CFG = """[net]
width=64
height=48
channels=3

[convolutional]
filters=16
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=21
size=1
activation=logistic

[yolo]
mask=0,1,2
anchors=4,6, 10,12, 20,18, 30,40, 50,30, 60,60
classes=2
num=6
new_coords=1
scale_x_y=2.0

[route]
layers=0

[convolutional]
filters=33
size=1
activation=linear

[Gaussian_yolo]
mask=3,4,5
anchors=4,6, 10,12, 20,18, 30,40, 50,30, 60,60
classes=2
num=6
scale_x_y=1.1

[route]
layers=0

[convolutional]
filters=14
size=1
activation=linear

[region]
anchors=1.1,1.5, 3.2,2.4
classes=2
num=2
coords=4
softmax=1

[route]
layers=0

[convolutional]
filters=21
size=1
activation=linear

[yolo]
mask=3,4,5
anchors=4,6, 10,12, 20,18, 30,40, 50,30, 60,60
classes=2
num=6
scale_x_y=1.05
"""


def randomize(net, seed=1):
    """Non-trivial batch norm statistics, biases and shortcut weights (as the reference data)."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        for key, v in layer.params.items():
            if key in ("biases", "rolling_mean"):
                v[...] = rng.uniform(-0.1, 0.1, v.shape)
            elif key in ("scales", "rolling_variance"):
                v[...] = rng.uniform(0.5, 1.5, v.shape)
            elif layer.layer_type == "shortcut":
                v[...] = rng.uniform(-1, 2, v.shape)
    return net


def session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def run(model, x):
    s = session(model)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"images": x})))


def assert_close(got, ref, what):
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-6)
    err = float(np.abs(got - ref).max())
    assert err <= TOL * scale, f"{what}: max error {err:g} > {TOL:g} x {scale:g}"


def check_network(net, x, opset=18, outputs=None, **kw):
    """Export, check, run in onnxruntime; every graph output equals pydarknet's."""
    model = build_onnx_model(net, opset=opset, outputs=outputs, **kw)
    onnx.checker.check_model(model, full_check=True)
    got = run(model, x)
    net.forward(x)
    compared = 0
    for name, value in got.items():
        if name[-1].isdigit():
            index = int(name.rsplit("_", 1)[1])
            assert_close(value, net.outputs[index], name)
            compared += 1
    assert compared
    return model, got


def image(net, seed=0, n=1):
    return np.random.default_rng(seed).random((n,) + net.input_shape, dtype=np.float32)


def before_heads(net):
    """The heads' input layers (their raw values show more than the squashed head outputs)."""
    return [l.index - 1 for l in net.layers if l.layer_type in ("yolo", "softmax")]


# -- the project's cfgs ---------------------------------------------------------------------
@pytest.mark.parametrize("name,size,opset", [
    ("yolov4-tiny", 160, 18), ("yolov4-tiny", 160, 13), ("darknet53", 128, 18),
    ("csdarknet53-omega", 128, 13), ("yolov4", 128, 18), ("yolov4-csp", 128, 18),
    ("yolov4x-mish", 128, 13)])
def test_project_cfgs(name, size, opset):
    net = randomize(Network(ROOT / "cfg" / f"{name}.cfg", batch=1, width=size, height=size))
    model, _ = check_network(net, image(net), opset, outputs=before_heads(net))
    ops = {n.op_type for n in model.graph.node}
    if any(l.activation == "mish" for l in net.layers):
        assert ("Mish" in ops) == (opset >= 18)


# -- random networks ---------------------------------------------------------------------------
def test_random_networks_export_as_they_run():
    """tools/onnx_export_fuzz.py's first seeds (random layers, activations, opsets, batch,
    dynamic batch, decoding, edge option values): each exports with every layer's output equal
    to pydarknet's, or is refused with a PydarknetError."""
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    import onnx_export_fuzz as fuzz
    verdicts = {}
    for seed in range(120):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # (overflow in the random networks)
                verdict, _ = fuzz.run_once(seed, [])
        except fuzz.Timeout:
            verdict = "too big"
        assert isinstance(verdict, str), (seed, verdict)
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    assert verdicts.get("equal", 0) >= 60, verdicts


# -- other runtimes ----------------------------------------------------------------------------
LOCAL_AVGPOOL_CFG = ("[net]\nwidth=13\nheight=11\nchannels=3\n"
                     "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
                     "[local_avgpool]\nsize=3\nstride=1\n"
                     "[local_avgpool]\nsize=2\nstride=2\n")


@pytest.mark.parametrize("name,opset", [("yolov4-tiny", 13), ("yolov4", 18),
                                        ("local_avgpool", 13)])
def test_opencv_dnn_reads_the_export(name, opset, tmp_path):
    """OpenCV's DNN (readNetFromONNX), where many Darknet users deploy, loads the export and
    gives onnxruntime's outputs, decoded boxes and scores too (it has no NonMaxSuppression).
    Its importer takes no boolean tensor (the [yolo] heads' logistic is sliced, not masked)
    and its AveragePool ignores count_include_pad ([local_avgpool] is a window sum by a
    depthwise convolution of ones)."""
    import cv2
    if name == "local_avgpool":
        net = randomize(load_cfg_text(LOCAL_AVGPOOL_CFG, batch=1))
        model = build_onnx_model(net, opset=opset, outputs=[1, 2])
    else:
        net = randomize(Network(ROOT / "cfg" / f"{name}.cfg", batch=1, width=128, height=128))
        model = build_onnx_model(net, opset=opset, decode=True)
    assert not any(t.data_type == onnx.TensorProto.BOOL for t in model.graph.initializer)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    x = image(net, 12)
    want = run(model, x)
    dnn = cv2.dnn.readNetFromONNX(str(path))
    dnn.setInput(x)
    names = [o.name for o in model.graph.output]
    for n, got in zip(names, dnn.forward(names)):
        assert_close(got.reshape(want[n].shape), want[n], n)


# -- Darknet's cfg corpus ---------------------------------------------------------------------
# the kinds no other test here exports: char-RNNs (vectors in, state in and out), [crnn] in a
# detector, EfficientNet's, YOLOv7's, ENet's, xnor; `python tools/onnx_export_fuzz.py 0 1000
# --whole-corpus` exports every cfg of the corpus the same way (all equal)
CORPUS_CFGS = ["rnn.cfg", "gru.cfg", "lstm.train.cfg", "crnn.train.cfg", "writing.cfg",
               "yolov3-tiny_occlusion_track.cfg", "efficientnet_b0.cfg", "yolov7-tiny.cfg",
               "enet-coco.cfg", "tiny-yolo_xnor.cfg"]


@pytest.mark.parametrize("name", CORPUS_CFGS)
def test_corpus_cfgs(ref, name):
    text = (ref / "cfg" / name).read_text()
    for key, value in (("width", 64), ("height", 64), ("batch", 1), ("subdivisions", 1)):
        text = re.sub(rf"^{key}\s*=\s*\d+", f"{key}={value}", text, flags=re.M)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # (the corpus's own: repeated keys, try_fix_nan)
        net = randomize(load_cfg_text(text, batch=1))
    last = len(net.layers) - 1 - (net.layers[-1].layer_type == "cost")
    heads = [l for l in net.layers if l.layer_type in ("yolo", "region")]
    model = build_onnx_model(net, opset=18, outputs=list(range(last + 1)), decode=bool(heads))
    onnx.checker.check_model(model, full_check=True)
    s = session(model)
    x = image(net, 11)
    feed = {i.name: np.zeros(i.shape, np.float32) for i in s.get_inputs()}   # state: zeros
    feed[s.get_inputs()[0].name] = x
    got = dict(zip([o.name for o in s.get_outputs()], s.run(None, feed)))
    net.forward(x)
    for index in range(last + 1):
        name = f"{net.layers[index].layer_type}_{index}"
        assert_close(got[name], net.outputs[index], name)
    if heads:
        assert_decoded_as_detector(got, net)


# -- Darknet's forward reference networks -------------------------------------------------------
@pytest.mark.parametrize("name", ["mini-yolo-a", "mini-yolo-b", "mini-classifier"])
@pytest.mark.parametrize("opset", [13, 18])
def test_reference_networks(ref, name, opset):
    folder = ref / "mini" / "forward" / name
    net = pydarknet.load(ref / "mini" / f"{name}.cfg", folder / "init.weights", batch=1)
    x = np.load(folder / "input.npy")
    everything = [l.index for l in net.layers if l.layer_type != "cost"]
    model, got = check_network(net, x, opset, outputs=everything,
                               weights_name=str(folder / "init.weights"))
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["layers"]:
        name_i = f"{net.layers[entry['index']].layer_type}_{entry['index']}"
        if name_i in got:      # Darknet's own output too (cost layers are not exported)
            darknet = np.load(folder / entry["file"]).reshape(got[name_i].shape)
            assert_close(got[name_i], darknet, f"{name_i} vs Darknet")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["weights"] == "init.weights" and meta["seen"] == str(net.seen)
    assert "[net]" in meta["cfg"]


# -- every layer type, every activation ------------------------------------------------------
@pytest.mark.parametrize("opset", [13, 18])
def test_every_layer_type(opset):
    net = randomize(load_cfg_text(LAYERS_CFG, batch=1))
    check_network(net, image(net), opset, outputs=list(range(len(net.layers))))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations(activation):
    """Each activation alone on values in [-30, 30] (Darknet's softplus threshold is 20) and
    fused in a batch-normalised convolution."""
    text = ("[net]\nwidth=16\nheight=16\nchannels=3\n\n[activation]\nactivation=%s\n\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=%s\n"
            % (activation, activation))
    net = randomize(load_cfg_text(text, batch=1))
    x = np.linspace(-30, 30, 3 * 16 * 16, dtype=np.float32).reshape(1, 3, 16, 16)
    variants = [(18, True), (13, True)] if activation != "mish" else [(18, True), (18, False),
                                                                       (13, True)]
    for opset, mish_op in variants:
        check_network(net, x, opset, outputs=[0, 1], mish_op=mish_op)


# -- heads and decoding ---------------------------------------------------------------------
def assert_decoded_as_detector(got, net, positive_scores=False):
    """The graph's boxes (corners) and scores equal pydarknet's decoding of the same pass."""
    dets = decode_network(net, thresh=0.0)
    px = dets.pixel_boxes()
    corners = np.concatenate([px[:, :2] - px[:, 2:] / 2, px[:, :2] + px[:, 2:] / 2], 1)
    assert got["boxes"].shape == (1, len(dets), 4)
    assert_close(got["boxes"][0], corners, "boxes")
    scores = got["scores"][0]
    assert_close(np.where(scores > 0, scores, 0) if positive_scores else scores, dets.probs,
                 "scores")


@pytest.mark.parametrize("opset", [13, 18])
def test_heads_decode_nms(opset):
    net = randomize(load_cfg_text(HEADS_CFG, batch=1))
    x = image(net, 3)
    model, got = check_network(net, x, opset, decode=True, nms=True, score_thresh=0.3)
    assert_decoded_as_detector(got, net)
    sel = got["selected_indices"]
    assert sel.ndim == 2 and sel.shape[1] == 3 and len(sel)
    assert (got["scores"][0][sel[:, 2], sel[:, 1]] > 0.3).all()
    heads = json.loads({p.key: p.value for p in model.metadata_props}["heads"])
    assert [h["index"] for h in heads] == [2, 5, 8, 11]


@pytest.mark.parametrize("point", ["left_top", "right_bottom"])
def test_decode_gaussian_yolo_point(point):
    """[Gaussian_yolo] yolo_point=left_top / right_bottom: the box's x, y are a corner, the
    decoded centre moves by half its size (as pydarknet's and AB's decoding)."""
    net = randomize(load_cfg_text(HEADS_CFG.replace("[Gaussian_yolo]\n",
                                                    f"[Gaussian_yolo]\nyolo_point={point}\n"),
                                  batch=1))
    assert [l.yolo_point for l in net.layers if l.layer_type == "gaussian_yolo"] == [point]
    _, got = check_network(net, image(net, 5), 18, decode=True)
    assert_decoded_as_detector(got, net)


YOLOV1_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
filters=4
size=3
stride=4
pad=1
activation=leaky

[local]
filters=4
size=3
pad=1
activation=leaky

[connected]
output={outputs}
activation=linear

[detection]
classes=3
coords=4
side=3
num=2
softmax={softmax}
sqrt={sqrt}
"""


@pytest.mark.parametrize("softmax, sqrt", [(0, 1), (1, 0)])
def test_decode_yolov1_detection_head(softmax, sqrt):
    net = randomize(load_cfg_text(YOLOV1_CFG.format(outputs=9 * 13, softmax=softmax, sqrt=sqrt),
                                  batch=1))
    x = image(net, 4)
    _, got = check_network(net, x, 18, decode=True)
    # YOLOv1's outputs are linear: decoding keeps only the scores above the threshold (0)
    assert_decoded_as_detector(got, net, positive_scores=True)


def test_decode_matches_detector_yolov4_tiny():
    net = randomize(Network(ROOT / "cfg" / "yolov4-tiny.cfg", batch=1, width=128, height=128))
    x = image(net, 5)
    _, got = check_network(net, x, 18, decode=True)
    assert_decoded_as_detector(got, net)


# -- batch, errors, command line ----------------------------------------------------------------
def test_dynamic_batch():
    net = randomize(load_cfg_text(LAYERS_CFG, batch=1))
    model = build_onnx_model(net, dynamic_batch=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    x = image(net, 7, n=3)
    got = run(model, x)
    for k in range(3):
        net.forward(x[k:k + 1])
        assert_close(got["softmax_27"][k:k + 1], net.outputs[27], f"image {k}")


def test_unexpressible_layer_is_named():
    text = ("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=2\nsize=3\n"
            "coordconv=1\n")
    net = load_cfg_text(text, batch=1)
    with pytest.raises(NotSupportedError, match=r"layer 0 \[convolutional\].*coordconv"):
        build_onnx_model(net)


def test_local_response_normalization():
    text = ("[net]\nwidth=9\nheight=7\nchannels=3\n"
            "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"
            "[lrn]\nsize=5\nalpha=0.2\nbeta=0.75\nkappa=1.5\n"
            "[normalization]\nsize=3\n")
    net = randomize(load_cfg_text(text, batch=1))
    check_network(net, image(net, 4), 13, outputs=[1, 2])


@pytest.mark.parametrize("dynamic", [False, True])
def test_implicit_knowledge(dynamic):
    text = ("[net]\nwidth=9\nheight=7\nchannels=3\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
            "[implicit]\nfilters=4\nmean=1\n"
            "[scale_channels]\nfrom=0\n"
            "[implicit]\nfilters=3\natoms=2\n"
            "[connected]\noutput=5\nactivation=linear\n")
    net = randomize(load_cfg_text(text, batch=2))
    check_network(net, image(net, 5, n=2), 13, outputs=[2, 3, 4], batch=2,
                  dynamic_batch=dynamic)


@pytest.mark.parametrize("w, h", [(12, 8), (13, 9)])
def test_shortcuts_between_spatial_sizes(w, h):
    """pjreddie's shortcut (ResNet cfgs): from a larger layer every stride-th value, into a
    larger output every sample-th place, over the fewer channels (odd sizes: stride 1)."""
    text = (f"[net]\nwidth={w}\nheight={h}\nchannels=3\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
            "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
            "[shortcut]\nfrom=-2\nactivation=leaky\n"
            "[upsample]\nstride=2\n"
            "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n"
            "[shortcut]\nfrom=1\nactivation=linear\n")
    net = randomize(load_cfg_text(text, batch=1))
    if w == 12:
        assert net.layers[2].resample == (2, 1, 4, 4, 6)
        assert net.layers[5].resample == (1, 2, 5, 4, 6)
    check_network(net, image(net, 6), 13, outputs=[2, 5])


def test_maxpool_zero_nonmax():
    text = ("[net]\nwidth=9\nheight=7\nchannels=3\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
            "[maxpool]\nsize=3\nstride=1\nmaxpool_zero_nonmax=1\n")
    net = randomize(load_cfg_text(text, batch=1))
    _, got = check_network(net, image(net, 7), 13, outputs=[1])
    assert 0 < np.count_nonzero(got["maxpool_1"]) < got["maxpool_1"].size


@pytest.mark.parametrize("opset", [13, 18])
def test_softmax_trees(opset):
    """[softmax] and [region] with a softmax tree: each group soft-maxed (bucketed by size);
    the tree's decoding is refused."""
    tree = ROOT / "tests" / "data" / "tiny.tree"
    region = (f"[net]\nwidth=32\nheight=24\nchannels=3\n"
              f"[convolutional]\nfilters=34\nsize=3\nstride=8\npad=1\nactivation=linear\n"
              f"[region]\nanchors=1,1.5, 2.5,2\nclasses=12\nnum=2\ncoords=4\ntree={tree}\n")
    net = randomize(load_cfg_text(region, batch=1))
    check_network(net, image(net, 8), opset, outputs=[1])
    with pytest.raises(NotSupportedError, match="softmax tree is exported .* export without "
                                                "--decode"):
        build_onnx_model(net, opset=opset, decode=True)
    net = load_cfg_text(f"[net]\nwidth=2\nheight=2\nchannels=3\n[softmax]\ntree={tree}\n"
                        f"temperature=2\n", batch=1)
    check_network(net, image(net, 9) * 8 - 4, opset, outputs=[0], dynamic_batch=True)


@pytest.mark.parametrize("shortcut", [0, 1])
def test_crnn_state_in_and_out(shortcut):
    """[crnn]: the state a graph input and output; fed back, three frames equal pydarknet's
    passes with the state carried."""
    text = ("[net]\nwidth=7\nheight=5\nchannels=3\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
            f"[crnn]\nbatch_normalize=1\nsize=3\npad=1\noutput=5\nhidden=3\n"
            f"activation=leaky\nshortcut={shortcut}\n"
            "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    net = load_cfg_text(text, batch=2)
    rng = np.random.default_rng(shortcut)
    for key, value in net.layers[1].params.items():
        value[...] = rng.uniform(0.5, 1.5, value.shape) if "variance" in key else \
            rng.uniform(-0.5, 0.5, value.shape)
    model = build_onnx_model(net, opset=13, batch=2, outputs=[1, 2])
    onnx.checker.check_model(model, full_check=True)
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    assert names == ["crnn_1", "convolutional_2", "crnn1_state_out"]
    state = np.zeros((2, 3, 5, 7), np.float32)
    for frame in range(3):
        x = rng.random((2, 3, 5, 7), dtype=np.float32)
        got = dict(zip(names, sess.run(None, {"images": x, "crnn1_state": state})))
        net.forward(x)
        assert_close(got["crnn_1"], net.outputs[1], f"frame {frame}")
        assert_close(got["convolutional_2"], net.outputs[2], f"frame {frame}")
        state = got["crnn1_state_out"]


def test_recurrent_layers_state_in_and_out():
    """[rnn], [lstm] and [gru] of a network of vectors: one time step a run, their state
    graph inputs and outputs; fed back, four steps equal pydarknet's passes."""
    text = ("[net]\ninputs=6\n"
            "[rnn]\nbatch_normalize=1\nhidden=5\noutput=4\nshortcut=1\nactivation=leaky\n"
            "[lstm]\nbatch_normalize=1\noutput=3\n"
            "[gru]\ntanh=1\noutput=4\n"
            "[connected]\noutput=6\nactivation=linear\n[softmax]\n")
    net = load_cfg_text(text, batch=2)
    rng = np.random.default_rng(4)
    for layer in net.layers:
        for key, value in layer.params.items():
            value[...] = rng.uniform(0.5, 1.5, value.shape) if "variance" in key else \
                rng.uniform(-0.8, 0.8, value.shape)
    model = build_onnx_model(net, opset=13, batch=2)
    onnx.checker.check_model(model, full_check=True)
    sess = session(model)
    inputs = [i.name for i in sess.get_inputs()]
    assert inputs == ["inputs", "rnn0_state", "lstm1_state", "lstm1_cell", "gru2_state"]
    names = [o.name for o in sess.get_outputs()]
    assert names == ["softmax_4", "rnn0_state_out", "lstm1_state_out", "lstm1_cell_out",
                     "gru2_state_out"]
    states = {"rnn0_state": np.zeros((2, 5, 1, 1), np.float32),
              **{k: np.zeros((2, 3, 1, 1), np.float32) for k in ("lstm1_state", "lstm1_cell")},
              "gru2_state": np.zeros((2, 4, 1, 1), np.float32)}
    for step in range(4):
        x = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 2)]
        got = dict(zip(names, sess.run(None, {"inputs": x, **states})))
        assert_close(got["softmax_4"], net.forward(x), f"step {step}")
        states = {k: got[k + "_out"] for k in states}
    multi = load_cfg_text(text.replace("[net]\n", "[net]\ntime_steps=3\nbatch=2\n"))
    with pytest.raises(NotSupportedError, match=r"time_steps=3"):
        build_onnx_model(multi)


def test_conv_lstm_and_history_state_in_and_out():
    """[conv_lstm] (peepholes, the cell clamped) and [history] at one time step a run."""
    text = ("[net]\nwidth=5\nheight=4\nchannels=3\n"
            "[convolutional]\nfilters=4\nsize=1\nactivation=leaky\n"
            "[conv_lstm]\nbatch_normalize=1\nsize=3\npad=1\noutput=3\npeephole=1\n"
            "state_constrain=1\nactivation=leaky\n"
            "[history]\nhistory_size=2\n"
            "[conv_lstm]\nsize=1\noutput=2\nlstm_activation=mish\n")
    net = load_cfg_text(text, batch=2)
    rng = np.random.default_rng(6)
    for layer in net.layers:
        for key, value in layer.params.items():
            value[...] = rng.uniform(0.5, 1.5, value.shape) if "variance" in key else \
                rng.uniform(-0.8, 0.8, value.shape)
    net.layers[1].params["uf_biases"][...] += 3       # cells past the clamp
    net.layers[1].params["ug_biases"][...] += 3
    model = build_onnx_model(net, opset=13, batch=2)
    onnx.checker.check_model(model, full_check=True)
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    states = {i.name: np.zeros((2,) + tuple(i.shape[1:]), np.float32)
              for i in sess.get_inputs()[1:]}
    assert sorted(states) == ["conv_lstm1_cell", "conv_lstm1_state", "conv_lstm3_cell",
                              "conv_lstm3_state"]
    for step in range(4):
        x = rng.random((2, 3, 4, 5), dtype=np.float32)
        got = dict(zip(names, sess.run(None, {"images": x, **states})))
        assert_close(got["conv_lstm_3"], net.forward(x), f"step {step}")
        states = {k: got[k + "_out"] for k in states}
    assert np.abs(states["conv_lstm1_cell"]).max() == 1.0


def test_antialiased_convolution_and_maxpool():
    """antialiasing=1/2: the layer at stride 1, then the blur as a depthwise Conv."""
    text = ("[net]\nwidth=19\nheight=14\nchannels=3\n"
            "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
            "antialiasing=1\nactivation=mish\n"
            "[convolutional]\nfilters=4\nsize=3\nstride_x=2\nstride_y=1\npad=1\n"
            "antialiasing=2\nactivation=leaky\n"
            "[maxpool]\nsize=2\nstride=2\nantialiasing=1\n"
            "[maxpool]\nsize=3\nstride=2\nantialiasing=2\n")
    net = randomize(load_cfg_text(text, batch=1))
    check_network(net, image(net, 3), 13, outputs=[0, 1, 2, 3])


def test_decode_region_classfix():
    """classfix=-1: scales below 0.5 count as 0 in the scores, as Darknet decodes them."""
    text = ("[net]\nwidth=32\nheight=32\nchannels=3\n"
            "[convolutional]\nfilters=14\nsize=3\nstride=4\npad=1\nactivation=linear\n"
            "[region]\nanchors=1.1,1.5, 3.2,2.4\nclasses=2\nnum=2\ncoords=4\nsoftmax=1\n"
            "classfix=-1\n")
    net = randomize(load_cfg_text(text, batch=1))
    net.layers[0].params["weights"][...] *= 4          # scales on both sides of 0.5
    _, got = check_network(net, image(net, 6), 13, decode=True)
    assert_decoded_as_detector(got, net)
    assert (got["scores"][0] == 0).any()


@pytest.mark.parametrize("kind", ["xnor", "binary"])
def test_xnor_and_binary_convolutions(kind):
    """Binarized weights (batch norm folded in after) and, for xnor, the input's signs."""
    text = ("[net]\nwidth=16\nheight=16\nchannels=3\n"
            "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n"
            f"[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
            f"activation=leaky\n{kind}=1\n")
    net = randomize(load_cfg_text(text, batch=1))
    check_network(net, image(net, 2), 13, outputs=[0, 1])


def test_cli_export(tmp_path):
    from pydarknet.cli import main
    out = tmp_path / "tiny.onnx"
    assert main(["export", "onnx", str(ROOT / "cfg" / "yolov4-tiny.cfg"), "none", str(out),
                 "--width", "96", "--height", "96", "--opset", "13", "--decode"]) == 0
    model = onnx.load(str(out))
    names = [o.name for o in model.graph.output]
    assert names == ["yolo_30", "yolo_37", "boxes", "scores"]
    assert model.graph.input[0].name == "images"
    assert list(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim) == \
        [1, 3, 96, 96]
