"""Data-parallel training speed: images/s of 1 and 2 MPI ranks (1 thread each) training the
demo network (cfg/demo-shapes.cfg, batch 16 per rank, gradients summed over the ranks), and
the scaling efficiency (images/s of N ranks / (N x images/s of 1)).

    python bench/distributed.py [--cfg cfg/demo-shapes.cfg] [--iterations 20] [--rounds 3]

Each configuration runs in its own `mpiexec` launch; the configurations alternate over the
rounds (this machine is shared and noisy) and the table gives the median and the spread.
Needs mpi4py and an MPI launcher: pip install ".[dist]".
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def worker(cfg, iterations):
    import time

    import numpy as np
    sys.path.insert(0, str(ROOT))
    import pydarknet
    from pydarknet.data.synthetic import random_truths
    from pydarknet.dist import DataParallel, get_world

    world = get_world()
    net = pydarknet.load(cfg)
    net.parallel = DataParallel(world) if world.size > 1 else None
    b = net.net.batch
    rng = np.random.default_rng(world.rank)
    x = rng.uniform(0, 1, (b, 3, net.net.height, net.net.width)).astype(np.float32)
    classes = min(l.classes for l in net.layers if l.layer_type == "yolo")
    truths = random_truths(rng, b, classes=classes)
    for _ in range(2):                                  # warm-up: buffers, caches
        net.train_iteration(x, truths)
    world.barrier()
    t0 = time.perf_counter()
    for _ in range(iterations):
        net.train_iteration(x, truths)
    world.barrier()
    seconds = time.perf_counter() - t0
    if world.is_root:
        print(json.dumps({"ranks": world.size, "images_per_s": world.size * b * iterations /
                          seconds, "seconds": seconds}))


def launcher():
    for path in (os.path.join(os.path.dirname(sys.executable), "mpiexec"),
                 shutil.which("mpiexec")):
        if path and os.path.exists(path):
            return path
    sys.exit("no mpiexec: pip install '.[dist]' (mpi4py and the mpich wheel)")


def run(ranks, cfg, iterations):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([launcher(), "-n", str(ranks), sys.executable, __file__, "--worker",
                          "--cfg", cfg, "--iterations", str(iterations)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", default=str(ROOT / "cfg" / "demo-shapes.cfg"))
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.cfg, args.iterations)
    speeds = {n: [] for n in args.ranks}
    for r in range(args.rounds):
        for n in args.ranks:
            speeds[n].append(run(n, args.cfg, args.iterations))
            print(f"round {r + 1}: {n} rank(s): {speeds[n][-1]:.1f} images/s", flush=True)
    base = statistics.median(speeds[args.ranks[0]])
    print(f"\n| ranks | images/s (median) | spread | scaling efficiency |\n|---|---|---|---|")
    for n in args.ranks:
        med = statistics.median(speeds[n])
        eff = [s / (n / args.ranks[0] * b) for s in speeds[n] for b in speeds[args.ranks[0]]]
        print(f"| {n} | {med:.1f} | {min(speeds[n]):.1f}-{max(speeds[n]):.1f} | "
              f"{med / (n / args.ranks[0] * base):.2f} ({min(eff):.2f}-{max(eff):.2f}) |")


if __name__ == "__main__":
    main()
