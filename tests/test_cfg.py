"""The cfg parser: Darknet's syntax and defaults, and errors that say where and what."""

import warnings

import numpy as np
import pytest

import pydarknet
from pydarknet.cfg import CfgWarning, parse_cfg_text

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"


def build(text, tmp_path=None, name="t.cfg"):
    if tmp_path is not None:
        p = tmp_path / name
        p.write_text(text)
        return pydarknet.Network(p, batch=1)
    return pydarknet.Network(parse_cfg_text(text, name), batch=1)


def test_syntax_comments_blanks_spaces_aliases_lists():
    text = ("; a comment\n[network]\n  width = 32 \nheight=32\nchannels=3\n\n# comment\n"
            "[conv]\nfilters = 8\nsize=3\npad=1\nactivation = leaky\n"
            "[max]\nsize=2\nstride=2\n"
            "[conv]\nfilters=4\nsize=1\nactivation=linear\n"
            "[route]\nlayers = -1, -2\n"
            "[avg]\n[conn]\noutput=3\nactivation=linear\n[soft]\n")
    net = build(text)
    assert [l.layer_type for l in net.layers] == [
        "convolutional", "maxpool", "convolutional", "route", "avgpool", "connected", "softmax"]
    assert net.layers[3].layers == [2, 1] and net.layers[3].out_c == 12


def test_darknet_defaults():
    net = build(NET + "[convolutional]\nfilters=2\nsize=3\n[maxpool]\nsize=3\nstride=1\n"
                "[convolutional]\nfilters=2\nsize=3\npad=1\ndilation=2\n")
    conv, pool, dil = net.layers
    assert conv.activation == "logistic" and conv.pad == 0 and conv.out_w == 30
    assert pool.pad == 2 and pool.out_w == 30            # maxpool padding defaults to size-1
    assert dil.pad == 1 and dil.out_w == 30              # output ignores dilation


def test_unused_option_warns_with_file_and_line():
    with pytest.warns(CfgWarning, match=r"t.cfg:6: \[convolutional\] unused option 'colour=red'"):
        build(NET + "[convolutional]\ncolour=red\nfilters=2\nsize=1\nactivation=linear\n")


def test_first_value_of_a_repeated_key_wins_with_a_warning():
    with pytest.warns(CfgWarning, match="repeated"):
        net = build(NET + "[convolutional]\nfilters=2\nfilters=5\nsize=1\nactivation=linear\n")
    assert net.layers[0].n == 2


def test_inline_comment_after_a_number():
    net = build(NET + "[convolutional]\nfilters=4#8\nsize=1\nactivation=linear\n")
    assert net.layers[0].n == 4


def test_an_integer_in_exponent_form_is_read_whole_with_darknets_reading_named():
    """max_batches=1e4 means 10000 (pydarknet's reading), but Darknet's atoi stops at the
    'e' and trains 1 iteration: said in a warning; 16.0 is 16 for both, silently."""
    with pytest.warns(CfgWarning, match=r"t.cfg:5: \[net\] max_batches=1e4 is read as 10000; "
                                        r"Darknet's atoi reads 1"):
        net = build(NET.replace("channels=3", "channels=3\nmax_batches=1e4") +
                    "[convolutional]\nfilters=16.0\nsize=1\nactivation=linear\n")
    assert net.net.max_batches == 10000 and net.layers[0].n == 16


BROKEN = [
    ("unknown section", NET + "[convolution]\nfilters=2\n", r"t.cfg:5: unknown section \[convolution\]"),
    ("bad number", NET + "[convolutional]\nfilters=two\nsize=1\n", r"t.cfg:6: \[convolutional\] filters: expected an integer, found 'two'"),
    ("bad float", "[net]\nwidth=32\nheight=32\nchannels=3\nmomentum=fast\n", r"t.cfg:5: \[net\] momentum: expected a number"),
    ("missing route layers", NET + "[convolutional]\nfilters=2\nsize=1\n[route]\n", r"t.cfg:8: \[route\] layers: missing required option 'layers'"),
    ("missing shortcut from", NET + "[convolutional]\nfilters=2\nsize=1\n[shortcut]\nactivation=linear\n", r"\[shortcut\] from: missing required option 'from'"),
    ("route outside", NET + "[convolutional]\nfilters=2\nsize=1\n[route]\nlayers=-5\n", r"t.cfg:9: \[route\] layers: refers to layer -5"),
    ("route forward", NET + "[convolutional]\nfilters=2\nsize=1\n[route]\nlayers=3\n", r"\[route\] layers: refers to layer 3"),
    ("shortcut outside", NET + "[convolutional]\nfilters=2\nsize=1\n[shortcut]\nfrom=-9\n", r"\[shortcut\] from: refers to layer -9"),
    ("shortcut shapes", NET + "[convolutional]\nfilters=2\nsize=1\n[convolutional]\nfilters=2\nsize=1\nstride_x=2\n[shortcut]\nfrom=-2\n", r"\[shortcut\] from: layer 0 is 32x32x2 but the input is 16x32x2: a shortcut between spatial sizes takes one layer, no weights, and the same ratio"),
    ("weighted shortcut shapes", NET + "[convolutional]\nfilters=2\nsize=1\n[convolutional]\nfilters=2\nsize=1\nstride=2\n[shortcut]\nfrom=-2\nweights_type=per_channel\n", r"\[shortcut\] from: layer 0 is 32x32x2 but the input is 16x16x2"),
    ("zero filters", NET + "[convolutional]\nfilters=0\nsize=1\n", r"t.cfg:6: \[convolutional\] filters: must be a positive integer"),
    ("negative size", NET + "[convolutional]\nfilters=2\nsize=-1\n", r"\[convolutional\] size: must be a positive integer"),
    ("groups", NET + "[convolutional]\nfilters=4\nsize=1\ngroups=2\n", r"\[convolutional\] groups: groups=2 must divide"),
    ("route sizes", NET + "[convolutional]\nfilters=2\nsize=1\n[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n", r"\[route\] layers: cannot concatenate"),
    ("yolo filters", NET + "[convolutional]\nfilters=10\nsize=1\n[yolo]\nclasses=2\nnum=3\nmask=0,1,2\n", r"\[yolo\] classes: .* set filters=21"),
    ("activation", NET + "[convolutional]\nfilters=2\nsize=1\nactivation=lekay\n", r"t.cfg:8: \[convolutional\] activation: unknown activation 'lekay'"),
    ("policy", "[net]\nwidth=32\nheight=32\nchannels=3\npolicy=cosine\n[avgpool]\n", r"\[net\] policy: unknown learning-rate policy 'cosine'"),
    ("steps", "[net]\nwidth=32\nheight=32\nchannels=3\npolicy=steps\n[avgpool]\n", r"policy=steps needs both steps= and scales="),
    ("no net", "[convolutional]\nfilters=2\n", r"t.cfg:1: the first section must be \[net\]"),
    ("empty", "# nothing\n", r"no sections"),
    ("no layers", NET, r"no layers"),
    ("option before section", "width=3\n[net]\n", r"t.cfg:1: option 'width=3' before the first"),
    ("bad header", "[net\nwidth=3\n", r"t.cfg:1: malformed section header"),
    ("no value", NET + "[convolutional]\nfilters=\n", r"t.cfg:6: \[convolutional\]: cannot parse 'filters='"),
    ("no input size", "[net]\nbatch=1\n[convolutional]\nfilters=2\n", r"\[net\]: no input size"),
    ("too small", "[net]\nwidth=2\nheight=2\nchannels=3\n[convolutional]\nfilters=2\nsize=5\n", r"output would be empty"),
    ("net twice", NET + "[net]\n", r"\[net\] may only be the first section"),
    ("history", NET + "[history]\nhistory_size=0\n", r"t.cfg:6: \[history\] history_size: must be a positive"),
    ("conv_lstm size", NET + "[conv_lstm]\noutput=4\nstride=2\n", r"t.cfg:7: \[conv_lstm\] stride: its convolutions must keep the size"),
    ("conv_lstm bottleneck", NET + "[conv_lstm]\noutput=4\npad=1\nbottleneck=1\n", r"\[conv_lstm\] bottleneck: bottleneck=1 is not implemented"),
    ("rnn-rows", NET + "[rnn]\noutput=0\n", r"t.cfg:6: \[rnn\] output: must be a positive"),
    ("sam channels", NET + "[convolutional]\nfilters=2\nsize=1\n[convolutional]\nfilters=3\nsize=1\n[sam]\nfrom=-2\n", r"\[sam\] from: layer 0 has 2 channels"),
    ("dropout", NET + "[dropout]\nprobability=1.5\n", r"\[dropout\] probability: probability must be in"),
    ("reorg channels", NET + "[reorg]\nstride=2\n", r"t.cfg:6: \[reorg\] stride: reorganises 3 channels, which must be a multiple of stride² = 4"),
    ("reorg3d reverse channels", NET + "[convolutional]\nfilters=4\nsize=1\n[reorg3d]\nstride=2\nreverse=1\n", r"\[reorg3d\] stride: reverse=1 reorganises 1 channels"),
    ("reorg3d empty", NET + "[reorg3d]\nstride=99\n", r"t.cfg:5: \[reorg3d\]: output would be empty \(0x0x29403\): its input is 32x32x3"),
    ("reorg odd size", "[net]\nwidth=9\nheight=8\nchannels=4\n[reorg]\nstride=2\n", r"\[reorg\] stride: needs an input whose width and height are multiples of 2"),
    ("local pad", NET + "[local]\nfilters=2\nsize=1\npad=1\n", r"t.cfg:8: \[local\] pad: pad=1 with size=1 gives Darknet's im2col another number"),
    ("two deforms", NET + "[convolutional]\nfilters=2\nsize=3\nsway=1\nrotate=1\n", r"t.cfg:9: \[convolutional\] rotate: only one of sway, rotate, stretch and stretch_sway"),
    ("deform 1x1", NET + "[convolutional]\nfilters=2\nsize=1\nstretch=1\n", r"\[convolutional\] stretch: stretch=1 needs size >= 3"),
    ("pool padding", NET + "[maxpool]\nsize=2\nstride=1\npadding=-1\n", r"t.cfg:8: \[maxpool\] padding: padding must be >= 0, found -1"),
    ("softmax temperature", NET + "[avgpool]\n[softmax]\ntemperature=0\n", r"t.cfg:7: \[softmax\] temperature: temperature must not be 0"),
    ("contrastive temperature", NET + "[contrastive]\ntemperature=0\n", r"t.cfg:6: \[contrastive\] temperature: temperature=0: the similarities are divided by it"),
    ("sam size", NET + "[convolutional]\nfilters=2\nsize=1\n[convolutional]\nfilters=2\nsize=3\n[sam]\nfrom=-2\n", r"\[sam\] from: layer 0 is 32x32, the input 30x30"),
    ("maxpool_depth channels", NET + "[maxpool]\nmaxpool_depth=1\nout_channels=4\n", r"\[maxpool\] out_channels: out_channels must be from 1 to the input's 3 channels, found 4"),
    ("conv padding", NET + "[convolutional]\nfilters=2\nsize=3\npadding=-3\n", r"t.cfg:8: \[convolutional\] padding: padding must be >= 0, found -3"),
    ("local empty", "[net]\nwidth=2\nheight=2\nchannels=3\n[local]\nsize=3\n", r"\[local\] size: output would be empty"),
    ("lrn size", NET + "[lrn]\nsize=9\n", r"t.cfg:6: \[lrn\] size: size=9 reaches past the input's 3 channels"),
    ("route groups", NET + "[convolutional]\nfilters=5\nsize=1\n[route]\nlayers=-1\ngroups=2\n", r"t.cfg:10: \[route\] groups: groups=2 does not split the 5 channels of layers 0 into whole channels"),
    ("crnn size", NET + "[crnn]\nsize=-1\noutput=4\nhidden=2\n", r"t.cfg:6: \[crnn\] size: size must be a positive integer, found -1"),
    ("batch", "[net]\nbatch=0\nwidth=3\nheight=3\nchannels=3\n[avgpool]\n", r"\[net\] batch: batch must be >= 1"),
    ("scale_wh channels", NET + "[convolutional]\nfilters=2\nsize=1\n[convolutional]\nfilters=2\nsize=1\n[scale_channels]\nfrom=-2\nscale_wh=1\n", r"t.cfg:13: \[scale_channels\] scale_wh: scale_wh=1 scales each pixel by the input, which must have 1 channel, found 2"),
    ("scale_channels size", NET + "[convolutional]\nfilters=2\nsize=1\n[convolutional]\nfilters=2\nsize=1\n[scale_channels]\nfrom=-2\n", r"t.cfg:12: \[scale_channels\] from: the input holds one scale per channel and must be 1x1, found 32x32"),
    ("downsample size", "[net]\nwidth=6\nheight=5\nchannels=3\n[upsample]\nstride=-2\n", r"t.cfg:6: \[upsample\] stride: stride=-2 sums 2x2 blocks: the input must be a multiple of 2 wide and high, found 6x5"),
    ("shared batch norm", NET + "[convolutional]\nfilters=3\nsize=1\n[convolutional]\nshare_index=0\nfilters=3\nsize=1\nbatch_normalize=1\n", r"t.cfg:12: \[convolutional\] batch_normalize: batch_normalize=1 but the shared layer 0 has no batch norm"),
    ("implicit std", NET + "[implicit]\nfilters=2\nstd=inf\n", r"t.cfg:7: \[implicit\] std: std must be a finite number, found inf"),
]


@pytest.mark.parametrize("text,pattern", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_cfgs_raise_errors_naming_file_line_option(tmp_path, text, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(pydarknet.PydarknetError, match=pattern):
            build(text, tmp_path)


def test_reorg3d_of_a_size_not_a_multiple_of_its_stride_warns_and_keeps_images_apart(tmp_path):
    """Darknet's reorg3d reads a 5x4 input as rows of 4 values, and each image after a batch's
    first from the image before's last values on; pydarknet reads rows as Darknet does but
    each image's own values."""
    text = "[net]\nbatch=2\nwidth=5\nheight=4\nchannels=1\n[reorg3d]\nstride=2\n"
    with pytest.warns(CfgWarning, match=r"t.cfg:6: \[reorg3d\] stride=2 of a 5x4 input, not "
                      r"multiples of 2: Darknet reads it as rows of 4 values"):
        net = build(text, tmp_path)
    x = np.arange(40, dtype=np.float32).reshape(2, 1, 4, 5)
    y = np.asarray(net.forward(x))
    # reorg_cpu's first image: channel offset % 2 picks the column, offset // 2 the row, of
    # the 20 values read as 4-wide rows
    flat = x[0].ravel()
    want = [[flat[(2 * i + o % 2) + 4 * (2 * j + o // 2)] for j in range(2) for i in range(2)]
            for o in range(4)]
    assert y.shape == (2, 4, 2, 2)
    np.testing.assert_array_equal(y[0].reshape(4, 4), want)
    np.testing.assert_array_equal(y[1], y[0] + 20)


def test_missing_cfg_file(tmp_path):
    with pytest.raises(pydarknet.CfgError, match="nope.cfg: cannot read"):
        pydarknet.Network(tmp_path / "nope.cfg")


@pytest.mark.parametrize("x,pattern", [
    (np.zeros((1, 3, 32, 32), np.float64), "float32"),
    (np.zeros((1, 3, 16, 32), np.float32), r"shape \[N, 3, 32, 32\]"),
    (np.zeros((3, 32, 32), np.float32), r"shape \[N, 3, 32, 32\]"),
    (np.zeros((0, 3, 32, 32), np.float32), "no images"),
    ([[1.0]], "numpy float32 array"),
])
def test_bad_inputs(x, pattern):
    net = build(NET + "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    with pytest.raises(pydarknet.ShapeError, match=pattern):
        net.predict(x)
