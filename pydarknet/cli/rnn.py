"""Darknet's ``rnn`` commands (examples/rnn.c): train a char-RNN on a text, generate text,
measure its perplexity on a text.

    pydarknet rnn train cfg/rnn.train.cfg -file shakespeare.txt [-backup backup] [-clear]
    pydarknet rnn generate cfg/rnn.cfg backup/rnn.backup -seed "ROMEO:" -len 500 -srand 1
    pydarknet rnn valid cfg/rnn.cfg backup/rnn_final.weights < held-out.txt
"""

import os
import sys

from ..errors import PydarknetError
from .common import add_device_option, darknet_flag, device_of, gpu_list


def _cmd_train(args):
    from ..text import train_text
    if len(gpu_list(args)) > 1:
        raise PydarknetError("rnn train runs on one device: give one GPU (--gpu 0)")
    train_text(args.cfg, args.file, args.weights, clear=args.clear, backup=args.backup,
               tokenized=args.tokenized, max_batches=args.max_batches, seed=args.seed,
               device=device_of(args))
    return 0


def _cmd_generate(args):
    import numpy as np

    from ..network import load
    from ..text import (check_seed, check_temperature, check_text_network, generate_symbols,
                        read_token_names)
    if args.len < 0:
        raise PydarknetError(f"-len {args.len}: give how many symbols to generate (0 or more)")
    check_temperature(args.temp)
    names = read_token_names(args.tokens) if args.tokens else None
    # one symbol a pass (time_steps 1), the state carried from pass to pass
    net = load(args.cfg, args.weights, batch=1, device=device_of(args))
    seed = os.fsencode(args.seed)             # the bytes as typed (Darknet's char *)
    check_seed(seed, check_text_network(net, args.cfg))
    if args.weights is None:
        print(f"note: no weights given: {args.cfg} runs with random weights", file=sys.stderr)
    rng = np.random.default_rng(args.srand)
    out = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()
    for c in generate_symbols(net, seed, args.len, args.temp, rng):
        if names is not None:
            if c >= len(names):
                raise PydarknetError(f"{args.tokens}: symbol {c} has no line ({len(names)} "
                                     f"tokens)")
            sys.stdout.write(names[c] + " ")
            sys.stdout.flush()
        elif out is not None:
            out.write(bytes((c,)))
            out.flush()
        else:
            sys.stdout.write(chr(c))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def _cmd_valid(args):
    from ..network import load
    from ..text import check_text_network, perplexity, read_text, text_symbols
    net = load(args.cfg, args.weights, batch=1, device=device_of(args))
    symbols = check_text_network(net, args.cfg)
    if args.file == "-":
        data = text_symbols(sys.stdin.buffer.read(), symbols, "standard input")
    else:
        data = read_text(args.file, symbols)
    if args.weights is None:
        print(f"note: no weights given: {args.cfg} runs with random weights", file=sys.stderr)
    line = None
    for count, per_symbol, per_word in perplexity(net, data, os.fsencode(args.seed)):
        line = f"{count} Perplexity: {per_symbol:4.4f}    Word Perplexity: {per_word:4.4f}"
        if args.every and count % args.every == 0:
            print(line, flush=True)
    if line is None:
        raise PydarknetError("the text holds one symbol: nothing follows it to score")
    if not args.every or count % args.every:
        print(line)
    return 0


def _cmd_vec(args):
    from ..network import load
    from ..text import word_vectors
    net = load(args.cfg, args.weights, batch=1, device=device_of(args))
    lines = (line.rstrip(b"\r\n") for line in sys.stdin.buffer)
    for word, vector in word_vectors(net, lines, os.fsencode(args.seed)):
        sys.stdout.buffer.write(word + "".join(f",{v:g}" for v in vector).encode() + b"\n")
    sys.stdout.flush()
    return 0


def add_commands(sub):
    """``rnn train``, ``rnn generate``, ``rnn valid`` and ``rnn vec``."""
    rnn = sub.add_parser("rnn", help="Darknet's char-RNN: train on a text, generate text, "
                                     "measure perplexity, print words' states")
    rsub = rnn.add_subparsers(dest="action", required=True)

    t = rsub.add_parser("train", allow_abbrev=False,
                        help="train a recurrent cfg on a text file (darknet rnn train)")
    t.add_argument("cfg", help="a cfg whose inputs= is the number of symbols (256: bytes) and "
                               "whose output is a [softmax] of as many")
    t.add_argument("weights", nargs="?", help="a checkpoint to resume (e.g. the .backup)")
    darknet_flag(t, "file", default="data/shakespeare.txt",
                 help="the text (bytes 1..inputs-1; default Darknet's data/shakespeare.txt)")
    darknet_flag(t, "tokenized", action="store_true",
                 help="the file holds whitespace-separated integer symbols instead of bytes")
    darknet_flag(t, "clear", action="store_true", help="restart the iteration count at 0")
    darknet_flag(t, "backup", default="backup",
                 help="checkpoint folder (default: backup): <cfg>.backup every 100 "
                      "iterations, <cfg>_N.weights every 10000, <cfg>_final.weights")
    t.add_argument("--max-batches", dest="max_batches", type=int,
                   help="stop at this iteration instead of the cfg's max_batches")
    t.add_argument("--seed", type=int, help="makes the streams' places and the initial "
                                            "weights repeatable")
    add_device_option(t)
    t.set_defaults(func=_cmd_train)

    g = rsub.add_parser("generate", allow_abbrev=False,
                        help="generate text, one symbol at a time (darknet rnn generate)")
    g.add_argument("cfg", help="the network (its batch and time_steps are set to 1)")
    g.add_argument("weights", nargs="?")
    darknet_flag(g, "seed", default="\n\n", help="text fed first (default: two newlines)")
    darknet_flag(g, "len", type=int, default=1000, help="symbols to generate (default 1000)")
    darknet_flag(g, "temp", type=float, default=0.7,
                 help="the softmax's temperature (default 0.7; lower: likelier symbols)")
    darknet_flag(g, "srand", type=int,
                 help="the sampling's random seed (default: a new one each run)")
    darknet_flag(g, "tokens", help="print symbols as the lines of this file (a tokenized "
                                   "network's; <NEWLINE> is a line break)")
    add_device_option(g)
    g.set_defaults(func=_cmd_generate)

    v = rsub.add_parser("valid", allow_abbrev=False,
                        help="the network's perplexity on a text, per symbol and per word "
                             "(darknet rnn valid)")
    v.add_argument("cfg", help="the network (its batch and time_steps are set to 1)")
    v.add_argument("weights", nargs="?")
    darknet_flag(v, "file", default="-", help="the text (default: standard input, as Darknet)")
    darknet_flag(v, "seed", default="\n\n", help="text fed first, not scored (default: two "
                 "newlines, as Darknet)")
    darknet_flag(v, "every", type=int, default=1000,
                 help="print Darknet's line every N symbols (1: each, as Darknet; 0: only the "
                      "last)")
    add_device_option(v)
    v.set_defaults(func=_cmd_valid)

    w = rsub.add_parser("vec", allow_abbrev=False,
                        help="each word of standard input with the first layer's state after "
                             "it (darknet rnn vec): 'word,v1,v2,...'")
    w.add_argument("cfg", help="the network (its batch and time_steps are set to 1)")
    w.add_argument("weights", nargs="?")
    darknet_flag(w, "seed", default="\n\n", help="text fed before each word (default: two "
                 "newlines, as Darknet)")
    add_device_option(w)
    w.set_defaults(func=_cmd_vec)
