"""predict() shares memory among the outputs it does not keep, and training passes among the
deltas (pydarknet.output_pool): what they give must be exactly what they gave with a buffer
per layer, on every layer type and on real cfgs."""

import pathlib

import numpy as np
import pytest

import pydarknet
from pydarknet.data.synthetic import random_truths
from pydarknet.errors import PydarknetError
from pydarknet.output_pool import KEPT, Slots, last_readers
from pydarknet.passes import backward_pass, check_truths, forward_pass
from pydarknet.train.iteration import train_pass
from test_backend_contract import FORWARD_CASES, build, forward_backward
from test_gradients import CASES

ROOT = pathlib.Path(__file__).resolve().parent.parent
ALL_CASES = {**CASES, **FORWARD_CASES}


def kept_outputs_agree(net, x, keep=()):
    net.forward(x)
    want = [np.array(o) for o in net.outputs]
    got_last = net.predict(x, keep=keep)
    np.testing.assert_array_equal(got_last, want[-1])
    kept = [i for i, last in enumerate(net._pool.last) if last == KEPT]
    for i in kept:
        np.testing.assert_array_equal(net.outputs[i], want[i], err_msg=f"output of layer {i}")
    return kept, want


@pytest.mark.parametrize("batch", [1, 2])      # batch 1: concatenations in place too
@pytest.mark.parametrize("case", list(ALL_CASES))
def test_predict_keeps_what_forward_gives(case, batch):
    net = build(ALL_CASES[case], "cpu")
    x = np.random.default_rng(0).standard_normal((batch, 3, 8, 8)).astype(np.float32)
    kept_outputs_agree(net, x)
    # every layer kept: the pool holds nothing, all outputs as forward's
    everything = range(len(net.layers))
    kept, want = kept_outputs_agree(net, x, keep=everything)
    assert kept == list(everything)


@pytest.mark.parametrize("cfg", ["yolov4-tiny.cfg", "yolov4.cfg", "csdarknet53-omega.cfg"])
def test_real_networks_keep_their_heads_in_a_fraction_of_the_memory(cfg):
    net = pydarknet.load(ROOT / "cfg" / cfg, batch=1, width=64, height=64)
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    kept, want = kept_outputs_agree(net, x)
    heads = [l.index for l in net.layers if l.layer_type in ("yolo", "softmax")]
    assert set(heads) | {len(net.layers) - 1} <= set(kept)
    all_outputs = sum(a.nbytes for a in want)
    assert net._pool.nbytes() < all_outputs / 3
    # later passes take the same slots: nothing allocated
    slots = [s.array for s in net._pool.slots]
    net.predict(x)
    assert all(s.array is a for s, a in zip(net._pool.slots, slots))
    assert len(net._pool.slots) == len(slots)


def test_an_output_not_kept_says_how_to_keep_it():
    net = build(CASES["shortcut"], "cpu")
    x = np.zeros((2, 3, 8, 8), np.float32)
    net.predict(x)
    with pytest.raises(PydarknetError, match=r"keep=\[1\].*forward\(x\)"):
        net.outputs[1]
    net.predict(x, keep=[1, -2])
    assert net.outputs[1] is not None and net.outputs[len(net.layers) - 2] is not None
    for bad in (len(net.layers), "1", 1.0, True):
        with pytest.raises(ValueError, match="keep: layer indexes"):
            net.predict(x, keep=[bad])


def test_route_and_shortcut_sources_live_until_their_last_reader():
    net = build(CASES["route-groups"] + "[shortcut]\nfrom=-3\n", "cpu")
    last = last_readers(net.layers)
    # layers: 0 stem, 1 conv, 2 route(-1,-2), 3 route(-1), 4 shortcut(-3 = layer 1)
    assert last[0] == 2 and last[1] == 4 and last[2] == 3 and last[4] == KEPT


def test_predict_between_training_passes_changes_neither():
    net = build(CASES["conv-bn-mish"] + CASES["shortcut"], "cpu")
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    net.predict(x)
    net.forward(x, train=True)
    trained = [np.array(o) for o in net.outputs]
    np.testing.assert_array_equal(net.predict(x), net.forward(x))
    net.forward(x, train=True)
    for a, b in zip(trained, net.outputs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", list(CASES))
def test_pooled_deltas_give_the_same_gradients(case):
    net = build(CASES[case], "cpu")
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    r = np.random.default_rng(1).standard_normal(net.layers[-1].out_shape(2)).astype(np.float32)
    want = forward_backward(net, x, r)[2]
    slots = Slots(net.backend)
    for _ in range(2):      # the second pass reuses the first one's slots
        got = forward_backward(net, x, r, slots)[2]
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"gradient {k}")
    assert net.deltas is None


def test_training_deltas_take_a_fraction_of_the_memory():
    net = pydarknet.load(ROOT / "cfg" / "yolov4-tiny.cfg", batch=2, width=64, height=64)
    x = np.random.default_rng(1).uniform(0, 1, (2, 3, 64, 64)).astype(np.float32)
    net.ensure_training()
    truths = check_truths(net, random_truths(np.random.default_rng(2), 2), 2)
    train_pass(net, x, truths)
    all_deltas = sum(l.outputs for l in net.layers) * 2 * 4
    assert 0 < net._delta_slots.nbytes() < all_deltas / 2


def test_a_delta_used_after_its_backward_fails_loudly():
    net = build(CASES["shortcut"], "cpu")
    net.ensure_training()
    state = forward_pass(net, np.zeros((2, 3, 8, 8), np.float32), train=True,
                         delta_slots=Slots(net.backend))
    backward_pass(net, state)
    with pytest.raises(RuntimeError, match="layer 1's delta was used after its backward"):
        state.deltas[1]


def test_every_layer_that_reads_earlier_outputs_says_which():
    """A forward that reads ``state.outputs[...]`` must list those layers in ``reads()``, or
    predict would hand their memory to later layers before it runs."""
    import inspect

    import pydarknet.layers  # noqa: F401  (registers every layer type)
    from pydarknet.layers.base import Layer
    from pydarknet.layers.registry import REGISTRY
    silent = [cls.__name__ for cls in set(REGISTRY.values())
              if "state.outputs[" in inspect.getsource(cls.forward) and cls.reads is Layer.reads]
    assert not silent, f"forward reads earlier outputs without reads(): {silent}"


# Every way a concatenation's input can be placed in it, or must not be (concat_places),
# after the stem (layer 0): an input two routes list (2: routes 4 and 5), a route listing
# an input twice (5), a route of routes (8: 4 and 6), a layer that returns its input
# (dropout 3, placed in route 6, which then copies it), a route taking a group of channels
# (7, a view at batch 1), and a route as the last layer.
CONCAT_CASES = """
[convolutional]
filters=6
size=3
pad=1
activation=leaky

[convolutional]
filters=4
size=1
activation=mish

[dropout]
probability=0.5

[route]
layers=1,2

[route]
layers=2,2

[route]
layers=3,0

[route]
layers=5
groups=2
group_id=1

[route]
layers=4,6,7
"""


@pytest.mark.parametrize("keep", [(), (2,), (1, 4), (3, 6), (7,)], ids=str)
def test_concatenations_written_in_place_give_what_copies_give(keep):
    net = build(CONCAT_CASES, "cpu")
    x = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    for _ in range(2):                             # the second pass reuses the slots
        kept, want = kept_outputs_agree(net, x, keep)
    assert set(keep) <= set(kept)
    places = {i: where for i, where in net._pool.places.items()}
    want = {1: (4, 0), 2: (4, 6 * 64), 3: (6, 0), 0: (6, 4 * 64), 4: (8, 0), 6: (8, 10 * 64),
            7: (8, 18 * 64)}
    assert places == {i: where for i, where in want.items() if i not in keep}


def copied_values(net, x, batch_run):
    """How many values the pass copies between layers (copy_rows)."""
    B, copied = net.backend, []
    copy_rows = B.copy_rows

    def counting(src, dst, count, *args, **kw):
        copied.append(count * src.shape[0])
        return copy_rows(src, dst, count, *args, **kw)
    B.copy_rows = counting
    try:
        batch_run(x)
    finally:
        del B.copy_rows
    return sum(copied)


def test_batch_1_concatenations_copy_almost_nothing():
    """yolov4-tiny's routes: each input is written where the route's output has it, but the
    one a second route reads (layer 23, in routes 24 and 34); a route taking a group of
    channels is a view."""
    net = pydarknet.load(ROOT / "cfg" / "yolov4-tiny.cfg", batch=1, width=64, height=64)
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    kept_outputs_agree(net, x)
    every_copy = copied_values(net, x, net.forward)
    in_place = copied_values(net, x, net.predict)
    assert in_place == net.layers[23].outputs and every_copy > 20 * in_place
    two = np.concatenate([x, x])
    assert copied_values(net, two, net.predict) == copied_values(net, two, net.forward)


# After the stem (layer 0): shortcut 2 adds into its input (conv 1, read by nothing later);
# shortcut 4's input (conv 3) is read again by route 6, shortcut 5 is weighted: both copy.
# Shortcut 9's input is dropout 8, which returns conv 7's memory, and shortcut 10 reads conv 7
# later: 9 copies. Shortcut 10 adds into its input (9) again.
SHORTCUT_CASES = """
[convolutional]
filters=4
size=3
pad=1
activation=leaky

[shortcut]
from=0
activation=mish

[convolutional]
filters=4
size=1
activation=linear

[shortcut]
from=0
activation=linear

[shortcut]
from=2
weights_type=per_channel
activation=swish

[route]
layers=-1,3

[convolutional]
filters=4
size=1
activation=linear

[dropout]
probability=0.3

[shortcut]
from=2
activation=leaky

[shortcut]
from=7
activation=linear
"""


@pytest.mark.parametrize("keep", [(), (1,), (9,), (2, 6)], ids=str)
@pytest.mark.parametrize("batch", [1, 2])
def test_shortcuts_add_into_an_input_nothing_else_reads(keep, batch):
    net = build(SHORTCUT_CASES, "cpu")
    x = np.random.default_rng(5).standard_normal((batch, 3, 8, 8)).astype(np.float32)
    B, copies = net.backend, []
    shortcut_add = B.shortcut_add

    def counting(out, add, *args, accumulate=True, **kw):
        copies.append(not accumulate)
        return shortcut_add(out, add, *args, accumulate=accumulate, **kw)
    B.shortcut_add = counting
    try:
        for _ in range(2):
            kept_outputs_agree(net, x, keep)
            copies.clear()
            net.predict(x, keep=keep)
    finally:
        del B.shortcut_add
    in_place = {2, 10} - {i + 1 for i in keep}     # a kept input is not written over
    assert sum(copies) == 5 - len(in_place)
