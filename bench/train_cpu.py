"""CPU training speed: one iteration (forward, backward, update) of pydarknet against the same
network in PyTorch CPU (bench/torch_model.py, pydarknet's weights), same run, 2 threads each.

    python bench/train_cpu.py [--cfg cfg/yolov4-tiny.cfg] [--size 416] [--batch 8] [--runs 3]
                              [--rounds 3]

Each measurement is its own process; the frameworks alternate over R rounds (the machine is
shared and noisy) and the table gives the median over the rounds and the ratio's spread.
pydarknet runs twice: as installed (oneDNN convolutions) and with PYDARKNET_ONEDNN=0
(im2col + sgemm, "fallback").

PyTorch's loss is a stand-in (binary cross-entropy on the activated head outputs against random
targets): its cost is negligible next to the convolutions, while pydarknet's time includes
Darknet's full YOLO loss. Peak memory is each run's max RSS (separate processes).
torch is optional: `pip install torch==2.13.0` installs the local CPU build.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def worker(framework, cfg, runs, threads):
    import resource
    import time

    import numpy as np
    sys.path.insert(0, str(ROOT))
    import pydarknet
    net = pydarknet.load(cfg)
    b = net.net.batch
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (b, 3, net.net.height, net.net.width)).astype(np.float32)
    from pydarknet.data.synthetic import random_truths
    truths = random_truths(rng, b)   # a few boxes per image
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
        sys.path.insert(0, str(ROOT / "bench"))
        from torch_model import TorchDarknet   # the same network, pydarknet's weights
        model = TorchDarknet(net).train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
        xt = torch.from_numpy(x)

        def run():
            opt.zero_grad()
            heads = model(xt)
            loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(
                h, torch.full_like(h, 0.5)) for h in heads)
            loss.backward()
            opt.step()
    else:
        net.backend.set_num_threads(threads)

        def run():
            net.train_iteration(x, truths)
    run()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"median_s": times[len(times) // 2],
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# what each row runs: the worker's framework and its environment
FRAMEWORKS = {"pydarknet": ("pydarknet", {}),
              "fallback": ("pydarknet", {"PYDARKNET_ONEDNN": "0"}),
              "PyTorch": ("torch", {})}


def measure(column, cfg, runs, threads):
    framework, extra_env = FRAMEWORKS[column]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), **extra_env)
    out = subprocess.run([sys.executable, __file__, "--worker", framework, str(cfg), str(runs),
                          str(threads)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{framework} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        fw, cfg, runs, threads = sys.argv[2:6]
        return worker(fw, cfg, int(runs), int(threads))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cfg", default=str(ROOT / "cfg" / "yolov4-tiny.cfg"))
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; each runs every framework once, in its own process")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-fallback", action="store_true",
                    help="skip the PYDARKNET_ONEDNN=0 row")
    args = ap.parse_args()
    text = pathlib.Path(args.cfg).read_text()
    for key, value in (("width", args.size), ("height", args.size), ("batch", args.batch),
                       ("subdivisions", 1)):
        text = re.sub(rf"(?m)^{key}=\d+", f"{key}={value}", text)
    cfg = pathlib.Path(tempfile.mkdtemp(prefix="pydarknet-bench-")) / pathlib.Path(args.cfg).name
    cfg.write_text(text)
    rows = ["pydarknet"] + ([] if args.no_fallback else ["fallback"])
    try:
        import torch  # noqa: F401
        rows.append("PyTorch")
    except ImportError:
        pass
    results = {r: [] for r in rows}
    for _ in range(args.rounds):
        for r in rows:                       # alternate: the machine's load hits all alike
            results[r].append(measure(r, cfg, args.runs, args.threads))
    print(f"one training iteration, {pathlib.Path(args.cfg).name} {args.size}x{args.size}, "
          f"batch {args.batch}, subdivisions 1, {args.threads} threads, median of {args.runs} "
          f"runs per process, {args.rounds} rounds")
    print(f"{'':12}{'seconds':>10}{'peak MB':>10}{'/ PyTorch: median [min, max]':>32}")
    for r in rows:
        secs = _median([m["median_s"] for m in results[r]])
        line = f"{r:12}{secs:10.3f}{max(m['peak_mb'] for m in results[r]):10.0f}"
        if "PyTorch" in results and r != "PyTorch":
            ratios = [a["median_s"] / b["median_s"]
                      for a, b in zip(results[r], results["PyTorch"])]
            line += f"{_median(ratios):14.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
        print(line)
    if "PyTorch" not in results:
        print("PyTorch not installed (pip install torch==2.13.0): no ratio")


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (
        values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


if __name__ == "__main__":
    main()
