"""AB Darknet's learning-rate schedule (get_current_rate) for random [net] options, as the
oracle of tests/test_policy.py, and a random comparison against pydarknet's.

    python tools/darknet_rate_oracle.py path/to/darknet              # tests/data/darknet_rates.json
    python tools/darknet_rate_oracle.py path/to/darknet --fuzz 0 3000

It compiles tools/darknet_rate_oracle.c against AB's library (``make LIBSO=1``), which parses
a cfg and prints ``get_current_rate`` after each given number of full batches. Rates are
compared as C floats, bit for bit, except that AB's -Ofast build flushes rates below
FLT_MIN to 0 (pydarknet keeps them: they change no weight) and that poly past max_batches with
a fractional power is NaN in Darknet, 0 in pydarknet.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

ORACLE = ROOT / "tests" / "data" / "darknet_rates.json"
NET = ("[net]\nbatch=4\nsubdivisions=2\nwidth=8\nheight=8\nchannels=3\npolicy={policy}\n"
       "{options}\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")


def random_schedule(rng):
    """(policy, [option lines], [batch numbers]) of a random learning-rate schedule."""
    policy = str(rng.choice(["constant", "step", "steps", "exp", "poly", "sigmoid", "sgdr"]))
    o = [f"learning_rate={rng.choice([0.1, 0.001, 0.0013, 1, 0.00261])}"]
    if rng.random() < 0.5:
        o.append(f"burn_in={int(rng.integers(1, 50))}")
    if rng.random() < 0.5:
        o.append(f"power={rng.choice([1, 2, 4, 0.5])}")
    o.append(f"max_batches={int(rng.integers(50, 500))}")
    if policy == "step":
        o += [f"step={int(rng.integers(1, 40))}", f"scale={rng.choice([0.1, 0.5, 2])}"]
    if policy == "steps" or policy == "sgdr" and rng.random() < 0.5:
        n = int(rng.integers(1, 4))
        steps = sorted(rng.integers(0, 300, n).tolist()) if rng.random() < 0.8 else \
            rng.integers(-5, 300, n).tolist()       # unsorted: the first step above k stops
        o += ["steps=" + ",".join(map(str, steps)),
              "scales=" + ",".join(str(rng.choice([0.1, 0.5, 2, 1])) for _ in range(n))]
    if policy in ("exp", "sigmoid"):
        o.append(f"gamma={rng.choice([0.99, 0.9, 0.1, 1.01])}")
    if policy == "sigmoid":
        o.append(f"step={int(rng.integers(-10, 200))}")
    if policy == "sgdr":
        if rng.random() < 0.6:
            o.append(f"sgdr_cycle={int(rng.integers(1, 100))}")
        if rng.random() < 0.5:
            o.append(f"sgdr_mult={int(rng.integers(1, 4))}")
        if rng.random() < 0.5:
            o.append(f"learning_rate_min={rng.choice([0, 0.0001, 0.01])}")
    ks = sorted(set(rng.integers(0, 600, 12).tolist() + [0, 1]))
    return policy, o, ks


def darknet_rates(exe, darknet, tmp, policy, options, ks):
    cfg = tmp / "rate.cfg"
    cfg.write_text(NET.format(policy=policy, options="\n".join(options)))
    out = subprocess.run([str(exe), str(cfg)] + [str(k) for k in ks], capture_output=True,
                         text=True, check=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=str(darknet))).stdout
    return [line.split()[1] for line in out.splitlines() if line.startswith("rate ")]


def same_rate(got, want):
    """pydarknet's rate against Darknet's printed one, as C floats: rates below FLT_MIN
    flushed, and Darknet's NaN (poly past max_batches with a fractional power, where training
    has stopped) 0 in pydarknet."""
    want = np.float32(float(want))
    if np.isnan(want):
        return got == 0
    return bool(np.float32(got) == want or (want == 0 and abs(got) < np.finfo(np.float32).tiny))


def pydarknet_rates(policy, options, ks):
    from pydarknet.cfg import parse_cfg_text
    from pydarknet.net_options import NetOptions
    from pydarknet.train.policy import learning_rate
    net = NetOptions(parse_cfg_text(NET.format(policy=policy, options="\n".join(options)),
                                    "rate.cfg")[0])
    return [learning_rate(net, k) for k in ks]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("darknet", type=pathlib.Path, help="AB Darknet's folder, built with "
                    "make LIBSO=1")
    ap.add_argument("--fuzz", nargs=2, type=int, metavar=("FIRST", "LAST"))
    ap.add_argument("--cases", type=int, default=150, help="schedules in the stored oracle")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    from darknet_forward_oracle import compile_against    # (the test imports this module)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        exe = compile_against(a.darknet, "darknet_rate_oracle.c", tmp / "rate")
        if a.fuzz:
            differing = 0
            for seed in range(*a.fuzz):
                case = random_schedule(np.random.default_rng(seed))
                want = darknet_rates(exe, a.darknet, tmp, *case)
                for k, g, w in zip(case[2], pydarknet_rates(*case), want):
                    if not same_rate(g, w):
                        differing += 1
                        print(f"seed {seed}: {case[0]} {case[1]} k={k}: pydarknet {g!r}, "
                              f"Darknet {w}", flush=True)
                        break
            print(f"{a.fuzz[1] - a.fuzz[0]} schedules, {differing} differing")
            return
        cases = []
        for seed in range(a.cases):
            policy, options, ks = random_schedule(np.random.default_rng(seed))
            cases.append({"policy": policy, "options": options, "k": ks,
                          "rates": darknet_rates(exe, a.darknet, tmp, policy, options, ks)})
        ORACLE.write_text(json.dumps(cases, indent=0) + "\n")
        print(f"{ORACLE}: {len(cases)} schedules")


if __name__ == "__main__":
    main()
