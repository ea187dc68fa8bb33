"""Mutated cfgs: pydarknet must build and run each, or refuse it with a PydarknetError (which
names file, line and option). Any other exception is a bug; this prints the first of each
kind (type, file:line) and keeps its cfg.

    python tools/cfg_mutation_fuzz.py 0 2000 [--keep DIR] [--corpus DIR]

Each seed takes a random network of tools/darknet_forward_oracle.py's generator (60%) or a
small cfg of the corpus (Darknet's cfg/ folder of the reference data, at 64x64), and sets one
or two of its options to an edge value (0, negative, fractional, a list, text, nan, inf).
Networks under 5 BFLOPs then run one forward pass. Huge values and networks of more than 20M
parameters are left out: they only test memory. With ``--train`` each network is built with its
cfg's batch and subdivisions instead and trains two iterations on random images and truths
(boxes for a detector, one-hot rows otherwise). With ``--resize`` the network is then resized
(Network.resize, random=1's) to a size drawn from the seed's own generator, from 4 to twice
the cfg's, and runs or trains again: it must, or refuse the size with a PydarknetError.
"""

import argparse
import pathlib
import re
import signal
import sys
import traceback
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

from darknet_forward_oracle import random_cfg  # noqa: E402
from pydarknet.cfg import parse_cfg_text  # noqa: E402
from pydarknet.errors import PydarknetError  # noqa: E402
from pydarknet.network import Network  # noqa: E402

VALUES = ["0", "-0.5", "0.0001", "100", "5", "-1", "-3", "abc", "1.5", "3,4", "2", "nan", "inf",
          "-0", "99", "7"]


class Timeout(Exception):
    pass


def mutated(rng, corpus, more=False):
    if rng.random() < 0.6 or not corpus:
        text = random_cfg(rng, more=more)[0]
    else:
        text = corpus[int(rng.integers(len(corpus)))].read_text()
        for key, value in (("width", 64), ("height", 64), ("batch", 1), ("subdivisions", 1)):
            text = re.sub(rf"^{key}\s*=\s*\d+", f"{key}={value}", text, flags=re.M)
    lines = text.splitlines()
    options = [i for i, line in enumerate(lines)
               if "=" in line and not line.strip().startswith(("#", ";"))]
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.choice(options))
        lines[i] = f"{lines[i].split('=')[0]}={rng.choice(VALUES)}"
    return "\n".join(lines)


def random_truths(net, rng):
    """Truths a training iteration of ``net`` takes: four boxes an image for a detector (of
    classes every head has), else one-hot rows of the last layer's outputs."""
    from pydarknet.heads import detection_heads
    batch = net.net.batch
    heads = detection_heads(net)
    if not heads:
        truths = np.zeros((batch, net.layers[-1].outputs), np.float32)
        truths[np.arange(batch), rng.integers(0, truths.shape[1], batch)] = 1
        return truths
    truths = np.zeros((batch, 4, 5), np.float32)
    truths[:, :, :2] = rng.uniform(0.05, 0.95, (batch, 4, 2))
    truths[:, :, 2:4] = rng.uniform(0.05, 0.6, (batch, 4, 2))
    truths[:, :, 4] = rng.integers(0, min(h.classes for h in heads), (batch, 4))
    return truths


def run_once(text, train, sizes=None):
    """Build (and run or train) one cfg; returns what happened: 'ran' or 'trained' (with
    ``sizes``, a generator of sizes: ', resized' where it then resized and ran or trained
    again, ', resize refused' where the size was refused), or raises."""
    if not train:
        net = Network(parse_cfg_text(text, "fuzz.cfg"), batch=1, init=False)
        if net.param_count() > 20_000_000:
            raise Timeout()            # (too big to be worth the memory)
        net.init_weights()

        def run():
            if net.total_bflops < 5:
                x = np.random.default_rng(0).random((1,) + net.input_shape, dtype=np.float32)
                net.forward(x)
        kind = "ran"
    else:
        net = Network(parse_cfg_text(text, "fuzz.cfg"), init=False)
        if net.param_count() > 20_000_000 or net.total_bflops * net.net.batch > 5:
            raise Timeout()
        net.init_weights()
        rng = np.random.default_rng(0)

        def run():
            if net.total_bflops * net.net.batch > 5:
                raise Timeout()
            images = rng.random((net.net.batch,) + net.input_shape, dtype=np.float32)
            net.train_iteration(images, random_truths(net, rng))
        run()
        kind = "trained"
    run()
    if sizes is None:
        return kind
    W, H = net.net.width, net.net.height
    try:
        net.resize(int(sizes.integers(4, max(2 * W, 4) + 1)),
                   int(sizes.integers(4, max(2 * H, 4) + 1)))
    except PydarknetError:
        return kind + ", resize refused"
    run()
    return kind + ", resized"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--keep", default="fuzz-bugs", help="folder for the failing cfgs")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "darknet-ref" / "cfg"))
    ap.add_argument("--train", action="store_true", help="train two iterations instead of one "
                    "forward pass")
    ap.add_argument("--more-layers", action="store_true", help="random networks of more "
                    "layer kinds (darknet_forward_oracle.random_cfg's more)")
    ap.add_argument("--resize", action="store_true", help="then resize the network and run "
                    "or train it again")
    a = ap.parse_args()
    corpus = sorted(p for p in pathlib.Path(a.corpus).glob("*.cfg")
                    if "tiny" in p.name or "cifar" in p.name)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(Timeout()))
    counts, seen = {}, set()
    for seed in range(a.first, a.last):
        text = mutated(np.random.default_rng(seed), corpus, a.more_layers)
        signal.alarm(20)
        try:
            kind = run_once(text, a.train,
                            np.random.default_rng([seed, 3]) if a.resize else None)
        except PydarknetError:
            kind = "refused"
        except (Timeout, MemoryError):
            kind = "too big"
        except Exception as e:        # a bug: pydarknet should have said what is wrong
            kind = "bug"
            where = traceback.extract_tb(e.__traceback__)[-1]
            key = (type(e).__name__, where.filename, where.lineno)
            if key not in seen:
                seen.add(key)
                keep = pathlib.Path(a.keep)
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{seed}.cfg").write_text(text)
                print(f"seed {seed}: {type(e).__name__}: {str(e)[:160]} "
                      f"({pathlib.Path(where.filename).name}:{where.lineno}); cfg in "
                      f"{keep / f'{seed}.cfg'}", flush=True)
        finally:
            signal.alarm(0)
        counts[kind] = counts.get(kind, 0) + 1
    print(counts)


if __name__ == "__main__":
    main()
