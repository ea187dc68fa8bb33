"""The section -> layer registry, options with no effect, and options refused for training."""

import warnings

import numpy as np
import pytest

import pydarknet
from pydarknet.cfg import CfgWarning, parse_cfg, parse_cfg_text
from pydarknet.errors import CfgError, NotSupportedError
from pydarknet.layers import REGISTRY, SECTION_NAMES, canonical_name, layer_class
from pydarknet.no_effect import NO_EFFECT, NoEffectWarning
from pydarknet.passes import backward_pass, forward_pass

NET = "[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n"
CONV = "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"


def build(text, name="t.cfg", **kw):
    return pydarknet.Network(parse_cfg_text(text, name), **kw)


def test_every_section_of_the_darknet_corpus_has_a_layer_class(ref):
    names = set()
    for path in sorted((ref / "cfg").glob("*.cfg")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sections = parse_cfg(path)
        for section in sections[1:]:
            cls = layer_class(section)
            assert REGISTRY[canonical_name(section.name)] is cls
            names.add(section.name)
    assert {"convolutional", "yolo", "rnn", "Gaussian_yolo", "reorg3d", "cost"} <= names


@pytest.mark.parametrize("alias, name", [
    ("conv", "convolutional"), ("max", "maxpool"), ("avg", "avgpool"), ("soft", "softmax"),
    ("conn", "connected"), ("local_avg", "local_avgpool"), ("silence", "empty"),
    ("lrn", "normalization")])
def test_aliases_are_registered_with_their_layer(alias, name):
    assert SECTION_NAMES[alias] == name
    assert layer_class(parse_cfg_text(f"[net]\n[{alias}]\n")[1]) is REGISTRY[name]
    assert REGISTRY[name].section_name == name


def test_every_layer_module_is_named_after_its_section():
    # [reorg3d] and [reorg] are the two reorgs in reorg.py, [conv_lstm] an [lstm] in lstm.py
    shared = {"reorg3d": "reorg", "conv_lstm": "lstm"}
    for name, cls in REGISTRY.items():
        module = cls.__module__.rsplit(".", 1)[1]
        assert module == shared.get(name, name.lower()), (name, cls.__module__)


def test_unknown_and_misplaced_sections_name_file_and_line():
    with pytest.raises(CfgError, match=r"t.cfg:6: unknown section \[convolution\]: expected "
                                       r"one of .*\[conv\]"):
        build(NET + "[convolution]\n")
    with pytest.raises(CfgError, match=r"t.cfg:10: \[network\] may only be the first section"):
        build(NET + CONV + "[network]\n")


def test_no_effect_table_names_registered_sections_only():
    assert set(NO_EFFECT) <= set(REGISTRY) | {"net"}


def test_no_effect_option_warns_once_for_all_layers():
    text = NET + (CONV + "stream=1\nwait_stream=2\n") * 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(text)
    messages = [str(w.message) for w in caught if issubclass(w.category, CfgWarning)]
    assert all(issubclass(w.category, NoEffectWarning) for w in caught
               if issubclass(w.category, CfgWarning))
    assert len(messages) == 2, messages
    assert messages[0].startswith("t.cfg:10: [convolutional] option 'stream' has no effect")
    assert "(and in 2 more [convolutional] sections)" in messages[0]
    assert "wait_stream" in messages[1]


def test_an_option_a_layer_acts_on_is_not_reported_as_without_effect():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = build(NET + CONV + "stride=2\n")
    assert net.layers[0].stride_x == 2
    with pytest.warns(NoEffectWarning, match="'stride' has no effect.*stride_x and stride_y"):
        net = build(NET + CONV + "stride=2\nstride_x=1\nstride_y=1\n")
    assert net.layers[0].stride_x == 1


def test_honoured_options_are_stored_on_the_layer():
    net = build(NET + CONV + "flipped=1\ngrad_centr=1\nreverse=0.5\n"
                "[crnn]\noutput=2\nhidden=2\nxnor=1\nshortcut=1\ndilation=1\n")
    conv, crnn = net.layers
    assert (conv.flipped, conv.grad_centr, conv.reverse) == (1, 1, 0.5)
    assert (crnn.xnor, crnn.shortcut, crnn.dilation) == (1, 1, 1)


REFUSED_FOR_TRAINING = [
    (CONV + "reverse=1\n", 10, "reverse"),
    (CONV + "assisted_excitation=4000\n", 10, "assisted_excitation"),   # training-only in Darknet
    (CONV.replace("size=1", "size=3\npad=1") + "rotate=1\n", 11, "rotate"),
    (CONV.replace("size=1", "size=3\npad=1") + "stretch_sway=1\n", 11, "stretch_sway"),
    (CONV + "cbn=1\n", 10, "cbn"),                                     # AB's GPU build only
    (CONV + "batch_normalize=2\n", 10, "batch_normalize"),
]


@pytest.mark.parametrize("layers, line, option", REFUSED_FOR_TRAINING)
def test_options_not_implemented_for_training_are_refused_when_training_starts(layers, line,
                                                                                option):
    net = build(NET + layers)
    x = np.zeros((2, 3, 8, 8), np.float32)
    net.forward(x)   # inference is unaffected
    with pytest.raises(CfgError, match=rf"t.cfg:{line}: \[\w+\] {option}: .*{option}=.* while "
                                       r"training, which pydarknet does not implement"):
        net.ensure_training()
    with pytest.raises(CfgError, match=option):
        net.forward(x, train=True)


def test_cost_ratio_has_no_effect_and_other_cost_types_train_as_sse():
    """AB's [cost] ratio= ends with a threshold of 0 (GPU) or is ignored (CPU); its
    get_cost_type knows sse, masked and smooth, and takes any other type as sse."""
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    t = np.random.default_rng(1).standard_normal((2, 3 * 64)).astype(np.float32)
    nets = {}
    for extra in ("", "ratio=0.5\n", "type=seg\n", "type=wgan\n", "type=L1\n"):
        if extra.startswith("ratio"):
            with pytest.warns(NoEffectWarning, match="'ratio' has no effect.*threshold to 0"):
                net = build(NET + "[cost]\n" + extra)
        else:
            net = build(NET + "[cost]\n" + extra)
        net.forward(x, train=True, truths=t)
        nets[extra] = (net.cost, np.array(net.deltas[0]))
    for cost, delta in nets.values():
        assert cost == nets[""][0]
        np.testing.assert_array_equal(delta, nets[""][1])


@pytest.mark.parametrize("layers, option", [
    (CONV + "coordconv=1\n", "coordconv"),
    (CONV + "[softmax]\nspatial=1\n", "spatial"),
])
def test_options_changing_the_forward_pass_are_refused_when_run(layers, option):
    net = build(NET + layers)
    with pytest.raises(NotSupportedError, match=rf"t.cfg:\d+: .*{option}"):
        net.forward(np.zeros((2, 3, 8, 8), np.float32))


def test_train_only_bn_freezes_the_layer_and_every_earlier_one():
    """AB's GPU build: the train_only_bn layer and all before it are not updated (weights,
    biases and scales stay), only their batch norm's rolling statistics move; the layers
    after it train."""
    text = NET + CONV + "batch_normalize=1\n" + CONV + "batch_normalize=1\ntrain_only_bn=1\n" \
        + CONV + "batch_normalize=1\n[avgpool]\n[cost]\n"
    net = build(text)
    before = [{k: v.copy() for k, v in l.params.items()} for l in net.layers]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    net.train_iteration(x, rng.standard_normal((2, 2)).astype(np.float32))
    for i in (0, 1):
        for k, v in net.layers[i].params.items():
            moved = not np.array_equal(v, before[i][k])
            assert moved == k.startswith("rolling"), (i, k)
    assert not np.array_equal(net.layers[2].params["weights"], before[2]["weights"])


def test_net_options_not_implemented_for_training_are_refused():
    net = build(NET.replace("batch=2", "batch=2\nsequential_subdivisions=2\nadam=0") + CONV)
    assert net.net.sequential_subdivisions == 2
    net.forward(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(CfgError, match=r"t.cfg:3: \[net\] sequential_subdivisions: "
                                       r"sequential_subdivisions=2 asks for sequence subdivisions"):
        net.ensure_training()


def test_net_option_without_effect_warns():
    with pytest.warns(NoEffectWarning, match=r"t.cfg:3: \[net\] option 'cudnn_half' has no "
                                             r"effect in pydarknet"):
        build(NET.replace("batch=2", "batch=2\ncudnn_half=1") + CONV)


def test_maxpool_zero_nonmax_keeps_each_windows_own_maximum():
    """AB's GPU build: a value stays where it is its window's maximum, else 0; backward passes
    the pooled gradient only there (on this layer's share)."""
    net = build(NET + "[maxpool]\nsize=3\nstride=1\nmaxpool_zero_nonmax=1\n")
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    want_out, pooled = np.zeros_like(x), np.zeros_like(x)
    delta = np.random.default_rng(1).random(x.shape, dtype=np.float32)
    for b, c, i, j in np.ndindex(x.shape):      # Darknet's windows: origin -1, first maximum
        cells = [(i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)
                 if 0 <= i + di < 8 and 0 <= j + dj < 8]
        best = max(cells, key=lambda p: (x[b, c][p], -cells.index(p)))
        if best == (i, j):
            want_out[b, c, i, j] = x[b, c, i, j]
        pooled[b, c][best] += delta[b, c, i, j]
    np.testing.assert_array_equal(net.forward(x), want_out)
    state = forward_pass(net, x, train=True)
    state.deltas[0][...] = delta
    dx = np.zeros_like(x)
    net.layers[0].input_delta = lambda state: dx
    backward_pass(net, state)
    np.testing.assert_allclose(dx, np.where(want_out != 0, pooled, 0), rtol=1e-6)


def test_maxpool_zero_nonmax_needs_the_inputs_size():
    with pytest.raises(CfgError, match=r"maxpool_zero_nonmax: .*needs an output the input's size"):
        build(NET + "[maxpool]\nsize=2\nstride=2\nmaxpool_zero_nonmax=1\n")
