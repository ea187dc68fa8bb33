"""Darknet's char-RNN (examples/rnn.c): a text as one-hot symbols, training on it, sampling.

A text is a file of bytes, each a symbol (the network's ``inputs`` = how many symbols: 256
for Darknet's cfg/rnn.train.cfg); a tokenized text (``-tokenized``) is a file of integers.
Training reads ``streams`` (the cfg's mini-batch) sequences at once, each from its own place,
``time_steps`` symbols a pass, each step's truth the symbol after it (get_rnn_data); after
every iteration each stream jumps to a random place with probability 1/64 and starts again
from a zero state. Generation feeds a seed one symbol at a time and samples the softmax's
output (at a temperature), as test_char_rnn.

Where Darknet differs: its loop runs one pass at a time (train_network_datum), so with
subdivisions > 1 it prints a line, counts ``i`` and lets streams jump after every pass, the
update coming every ``subdivisions`` passes; here an iteration is the update's passes, and the
line, the count and the jumps come once per iteration (the same with subdivisions=1;
Darknet's rnn.train.cfg and lstm.train.cfg have 8). Darknet's reset_network_state (GPU
builds only) zeroes ``outputs`` values of each layer's state_gpu/h_gpu, leaving an [lstm]'s
cell; here a jumping stream's whole state (h, and an [lstm]'s cell) starts from zero.

    from pydarknet.network import load
    from pydarknet.text import train_text, generate_text
    train_text("rnn.train.cfg", "shakespeare.txt", backup="backup")
    net = load("rnn.cfg", "backup/rnn_final.weights", batch=1)
    print(generate_text(net, seed=b"ROMEO:", length=200, rng=np.random.default_rng(1)))
"""

import os

import numpy as np

from .errors import PydarknetError
from .layers.base import output_layer as layers_output

DEFAULT_SEED = b"\n\n"          # Darknet's -seed
JUMP_ODDS = 64                  # a stream jumps after an iteration with probability 1/64
DARKNET_FLOOR = 1e-4            # outputs below it are zeroed before sampling


# -- reading -------------------------------------------------------------------------------
def _read(path, what, binary, flag="-file"):
    try:
        with open(path, "rb" if binary else "r") as f:
            return f.read()
    except FileNotFoundError:
        raise PydarknetError(f"{path}: no such {what} (give it with {flag})") from None
    except IsADirectoryError:
        raise PydarknetError(f"{path}: is a folder, not a {what}") from None
    except OSError as e:
        raise PydarknetError(f"{path}: cannot read the {what}: {e.strerror}") from None


def read_text(path, symbols=256):
    """The bytes of a text file as symbols (a uint8 array). Darknet's get_rnn_data refuses
    byte 0 ("Bad char"), and a byte of ``symbols`` or more has no input: either names its
    offset and value."""
    return text_symbols(_read(path, "text file", True), symbols, path)


def text_symbols(raw, symbols=256, path="the text"):
    """:func:`read_text`'s checks on bytes already read (``path`` names them in errors)."""
    data = np.frombuffer(raw, np.uint8)
    if data.size == 0:
        raise PydarknetError(f"{path}: the text is empty")
    bad = np.flatnonzero((data == 0) | (data >= symbols))
    if bad.size:
        at, byte = int(bad[0]), int(data[bad[0]])
        more = f" ({bad.size} such bytes in all)" if bad.size > 1 else ""
        if byte == 0:
            raise PydarknetError(f"{path}: offset {at}: byte 0 (NUL){more}, which Darknet's "
                                 f"char-RNN refuses: is it a text file?")
        raise PydarknetError(f"{path}: offset {at}: byte {byte}{more}, but the cfg's "
                             f"inputs={symbols} takes bytes 1..{symbols - 1} only (one input "
                             f"per symbol): remove such bytes or use inputs=256")
    return data


def read_tokens(path, symbols):
    """A tokenized text (Darknet's read_tokenized_data): whitespace-separated integers, each a
    symbol in 0..symbols-1."""
    text = _read(path, "tokenized text", False)
    words = text.split()
    if not words:
        raise PydarknetError(f"{path}: the tokenized text is empty: nothing to train on")
    try:
        data = np.array([int(w) for w in words], np.int64)
    except ValueError:
        word = next(w for w in words if not _is_int(w))
        raise PydarknetError(f"{path}: -tokenized expects whitespace-separated integers, "
                             f"found {word!r}") from None
    bad = np.flatnonzero((data < 0) | (data >= symbols))
    if bad.size:
        raise PydarknetError(f"{path}: token {int(bad[0])} is {int(data[bad[0]])}, outside "
                             f"0..{symbols - 1} (the network's inputs={symbols})")
    return data


def _is_int(word):
    try:
        int(word)
        return True
    except ValueError:
        return False


def read_token_names(path):
    """Darknet's read_tokens: one symbol's text a line (``<NEWLINE>`` for a line break), as
    ``generate -tokens`` prints them."""
    lines = _read(path, "tokens file", False, "-tokens").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return ["\n" if line == "<NEWLINE>" else line for line in lines]


# -- batches -------------------------------------------------------------------------------
def rnn_batch(data, offsets, symbols, steps):
    """Darknet's get_rnn_data: one pass of ``len(offsets)`` streams x ``steps`` steps in
    step-major rows (row ``j * streams + i`` is step j of stream i): x one-hot of each symbol,
    y of the one after it. ``offsets`` (an integer array) advance by ``steps``, wrapping."""
    n = len(data)
    streams = len(offsets)
    at = (np.asarray(offsets, np.int64)[None, :] + np.arange(steps)[:, None]) % n  # [step, i]
    rows = np.arange(steps * streams)
    x = np.zeros((steps * streams, symbols), np.float32)
    y = np.zeros((steps * streams, symbols), np.float32)
    x[rows, data[at].reshape(-1)] = 1
    y[rows, data[(at + 1) % n].reshape(-1)] = 1
    offsets[...] = (np.asarray(offsets, np.int64) + steps) % n
    return x, y


class TextStreams:
    """The loader of a char-RNN's training (``Trainer`` calls ``next`` for each iteration and
    ``after_iteration`` after it): ``streams`` places in ``data``, random at first; an
    iteration takes ``subdivisions`` passes from them in order. After each iteration each
    stream jumps with probability 1/64 to a random place and its state is reset in every
    recurrent layer (Darknet's reset_network_state)."""

    def __init__(self, net, data, seed=None):
        self.net, self.data = net, data
        self.symbols = net.net.inputs
        self.steps = max(net.net.time_steps, 1)
        self.streams = net.net.mini_batch
        self.passes = net.net.subdivisions
        self.rng = np.random.default_rng(seed)
        self.offsets = self.rng.integers(len(data), size=self.streams)
        self.jumps = 0

    def next(self):
        xs, ys = zip(*(rnn_batch(self.data, self.offsets, self.symbols, self.steps)
                       for _ in range(self.passes)))
        x = np.concatenate(xs)
        return x.reshape((len(x),) + tuple(self.net.input_shape)), np.concatenate(ys)

    def after_iteration(self):
        from .layers.recurrent import Recurrent
        for j in range(self.streams):
            if self.rng.integers(JUMP_ODDS) == 0:
                self.offsets[j] = self.rng.integers(len(self.data))
                self.jumps += 1
                for layer in self.net.layers:
                    if isinstance(layer, Recurrent):
                        layer.reset_state(j)

    def set_size(self, width, height):
        """(The Trainer's resize on resuming: a text has no image size.)"""

    def set_batch(self, rows):
        """(The Trainer's mini-batch on resuming, in rows an iteration: the cfg's.)"""
        if rows != self.symbols_per_iteration:
            raise PydarknetError(f"the checkpoint was trained with {rows // self.steps} "
                                 f"sequences an iteration and the cfg has "
                                 f"{self.passes * self.streams}: resume with the same cfg, or "
                                 f"start again with -clear")

    @property
    def symbols_per_iteration(self):
        return self.passes * self.streams * self.steps

    def get_state(self):
        return {"offsets": [int(o) for o in self.offsets], "rng": self.rng.bit_generator.state,
                "jumps": self.jumps}

    def set_state(self, state):
        if len(state.get("offsets", ())) == self.streams:
            self.offsets = np.array(state["offsets"], np.int64) % len(self.data)
            self.rng.bit_generator.state = state["rng"]
            self.jumps = state.get("jumps", 0)


# -- the network ---------------------------------------------------------------------------
def output_layer(net):
    """The index of the layer generation reads (Darknet's get_network_output_layer)."""
    return layers_output(net.layers)


def check_text_network(net, cfg="the cfg"):
    """The number of symbols (``inputs``) of a char-RNN network, or an error naming what is
    wrong: its output must be a [softmax] of one value per symbol."""
    symbols = int(net.net.inputs or 0)
    if symbols < 2 or int(np.prod(net.input_shape)) != symbols:
        raise PydarknetError(f"{cfg}: a text network takes inputs= one-hot symbols (e.g. "
                             f"inputs=256 for bytes) and no width/height/channels; this one "
                             f"takes {'x'.join(map(str, net.input_shape))}")
    last = net.layers[output_layer(net)]
    if last.layer_type != "softmax" or last.outputs != symbols:
        what = (f"a [softmax] of {last.outputs} outputs" if last.layer_type == "softmax" else
                f"[{last.section.name}] (layer {last.index})")
        raise PydarknetError(f"{cfg}: a char-RNN ends in a [softmax] (optionally followed by "
                             f"[cost]) of inputs={symbols} outputs, one probability per "
                             f"symbol; this one ends in {what}")
    return symbols


# -- training ------------------------------------------------------------------------------
def _trainer_class():
    from .train.loop import Trainer

    class TextTrainer(Trainer):
        """Darknet's train_char_rnn checkpoints and console line: ``<cfg>.backup`` every 100
        iterations (and when stopped), ``<cfg>_N.weights`` every 10000, ``<cfg>_final``."""

        loaded_line = False

        def checkpoint_path(self, name):
            if name == "last":
                return os.path.join(self.backup, f"{self.base}.backup")
            return super().checkpoint_path(name)

        def progress_line(self, record):
            # Darknet: the symbols read so far over the text's length
            loader = self.loader
            record["epochs"] = (record["iteration"] * loader.symbols_per_iteration /
                                len(loader.data))
            return (f"{record['iteration']}: {record['loss']:f}, {record['avg_loss']:f} avg, "
                    f"{record['rate']:f} rate, {record['seconds']:f} seconds, "
                    f"{record['epochs']:f} epochs")

    return TextTrainer


def train_text(cfg, path, weights=None, clear=False, backup="backup", tokenized=False,
               max_batches=None, seed=None, device="cpu", log=print):
    """Darknet's ``rnn train``: train ``cfg`` on the text at ``path`` to max_batches (or
    ``max_batches``); returns the trainer and the final (or, when stopped, the .backup)
    checkpoint. Everything train.loop.Trainer does holds: resumption from a checkpoint's
    sidecar, SIGINT/SIGTERM saving ``<cfg>.backup``, ``<cfg>_train.jsonl`` and chart.png."""
    from .dist import launched_ranks
    if launched_ranks() > 1:
        raise PydarknetError("rnn train runs in one process (its streams are not split "
                             "between ranks): run it without mpiexec")
    if not os.path.isfile(str(cfg)):
        raise PydarknetError(f"{cfg}: no such cfg file")
    if weights and not os.path.isfile(str(weights)):
        raise PydarknetError(f"{weights}: no such weights file")
    holder = {}

    def loader(net, loader_seed):
        symbols = check_text_network(net, cfg)
        data = read_tokens(path, symbols) if tokenized else read_text(path, symbols)
        holder["streams"] = streams = TextStreams(net, data, loader_seed)
        o = net.net
        log(f"Learning Rate: {o.learning_rate:g}, Momentum: {o.momentum:g}, Decay: "
            f"{o.decay:g}, Inputs: {symbols} {net.batch} {streams.steps}")
        log(f"{len(data)} symbols, {streams.streams} streams of {streams.steps} steps, "
            f"{streams.passes} passes an iteration")
        return streams

    trainer = _trainer_class()(cfg, loader, weights=weights, clear=clear, backup=backup,
                               seed=seed, log=log, max_batches=max_batches, device=device,
                               last_every=100, save_every=10000)
    return trainer, trainer.run()


# -- generation ----------------------------------------------------------------------------
def sample_array(probabilities, rng):
    """Darknet's sample_array: the index where a uniform draw in [0, 1) falls in the
    cumulative sum of the probabilities scaled to sum to 1 (the last index past the end)."""
    a = np.asarray(probabilities, np.float32).reshape(-1)
    total = float(a.sum(dtype=np.float32))
    if not total > 0:
        raise PydarknetError("the network's output is zero everywhere: nothing to sample")
    cumulative = np.cumsum(a / np.float32(total), dtype=np.float64)
    r = rng.random()
    return int(min(np.searchsorted(cumulative, r, side="left"), len(a) - 1))


def check_temperature(temperature):
    if not temperature > 0:
        raise PydarknetError(f"-temp {temperature:g}: the temperature must be above 0 (the "
                             f"softmax divides its inputs by it)")


def set_temperature(net, temperature):
    """Darknet sets every layer's temperature; [softmax] layers divide their inputs by it."""
    check_temperature(temperature)
    for layer in net.layers:
        if layer.layer_type == "softmax":
            layer.temperature = float(temperature)


def check_seed(seed, symbols):
    """The seed's symbols as a list, each checked to be one of the network's."""
    seed = [int(c) for c in seed]
    for k, c in enumerate(seed):
        if not 0 <= c < symbols:
            raise PydarknetError(f"-seed: symbol {k} is {c}, but the network takes "
                                 f"inputs={symbols} symbols (0..{symbols - 1})")
    return seed


def _one_symbol_a_pass(net, what, index=None):
    """(symbols, feed): ``feed(c)`` runs the one-step network on symbol ``c`` (its state
    carried from pass to pass) and returns the values of layer ``index`` (default the output
    layer; a float32 copy)."""
    symbols = check_text_network(net)
    if net.batch != 1:
        raise PydarknetError(f"{what} runs one symbol a pass: build the network with batch=1 "
                             f"(this one takes {net.batch} rows)")
    index = output_layer(net) if index is None else index
    x = np.zeros((1,) + tuple(net.input_shape), np.float32)
    flat = x.reshape(-1)

    def feed(c):
        flat[c] = 1
        net.predict(x, keep=[index])
        flat[c] = 0
        return np.array(net.outputs[index], np.float32).reshape(-1)
    return symbols, feed


def generate_symbols(net, seed=DEFAULT_SEED, length=1000, temperature=0.7, rng=None):
    """Darknet's test_char_rnn on a one-step network (``Network(cfg, batch=1)``): yields the
    seed's symbols as they are fed (but the last), then its last symbol, then ``length``
    symbols sampled each from the output after the one before (an empty seed starts from
    symbol 0, as Darknet's, without yielding it). The state carries from symbol to symbol."""
    symbols, feed = _one_symbol_a_pass(net, "generation")
    seed = check_seed(seed, symbols)
    set_temperature(net, temperature)
    rng = rng if rng is not None else np.random.default_rng()
    for c in seed[:-1]:
        feed(c)
        yield int(c)
    c = int(seed[-1]) if seed else 0
    if seed:
        yield c
    for _ in range(length):
        out = feed(c)
        out[out < np.float32(DARKNET_FLOOR)] = 0
        c = sample_array(out, rng)
        yield c


def perplexity(net, data, seed=b""):
    """Darknet's ``rnn valid`` (valid_char_rnn) on a one-step network: feeds ``seed``, then
    each symbol of ``data`` but the last, and after each scores the symbol that follows.
    Yields ``(count, perplexity, word_perplexity)`` after each: 2 to the minus mean log2
    probability of the symbols so far, per symbol and per word (words: 1 + the spaces, tabs
    and newlines among them), summed in float32 as Darknet's."""
    symbols, feed = _one_symbol_a_pass(net, "validation")
    data = check_seed(data, symbols)
    for c in check_seed(seed, symbols):
        feed(c)
    total = np.float32(0)
    words = 1
    for count, (c, following) in enumerate(zip(data, data[1:]), 1):
        if following in (32, 10, 9):
            words += 1
        p = float(feed(c)[following])
        with np.errstate(divide="ignore"):
            total = np.float32(total + np.float32(np.log(p) / np.log(2)))
        yield count, 2.0 ** (-float(total) / count), 2.0 ** (-float(total) / words)


def word_vectors(net, words, seed=DEFAULT_SEED):
    """Darknet's ``rnn vec`` (vec_char_rnn) on a one-step network: for each word (bytes; its
    blanks, tabs and line ends dropped, as Darknet's strip), from a zero state, the seed,
    the word and a space are fed; yields ``(word, the first layer's output)`` (float32; the
    hidden state of a char-RNN). (AB's CPU build forgets to reset the state between words;
    its GPU build and this reset it.)"""
    symbols, feed = _one_symbol_a_pass(net, "rnn vec", index=0)
    seed = check_seed(seed, symbols)
    for word in words:
        word = bytes(b for b in word if b not in b" \t\r\n")
        for layer in net.layers:
            if hasattr(layer, "reset_state"):
                layer.reset_state()
        for c in seed + check_seed(word, symbols):
            feed(c)
        yield word, feed(32)


def generate_text(net, seed=DEFAULT_SEED, length=1000, temperature=0.7, rng=None):
    """The bytes ``generate_symbols`` yields (a byte network's)."""
    return bytes(generate_symbols(net, seed, length, temperature, rng))

