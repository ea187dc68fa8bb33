"""Regenerate tests/data/darknet_heads.npz: AB Darknet's own training forward of its
[region], [detection], [Gaussian_yolo] and [yolo] layers on fixed inputs and truths (output,
l.delta, l.cost), the oracle of tests/test_darknet_heads.py.

    # AB Darknet (commit 59596d7, as the reference data), CPU library:
    git clone https://github.com/AlexeyAB/darknet && cd darknet && make LIBSO=1
    python tools/darknet_heads_oracle.py path/to/darknet

It compiles tools/darknet_heads_oracle.c against the library (gcc), which parses a one-layer
cfg, runs ``l.forward`` with ``state.train = 1`` and writes ``l.output``, ``l.delta`` and
``l.cost[0]`` (for [local] also ``l.backward``'s results; for [crnn] inference over several
frames). The cases are tests/test_darknet_heads.py's ``CASES``, ``LOCAL_CASES`` and
``CRNN_CASES``. It also writes tests/data/darknet_contrastive.npz: AB's whole training forward
of tests/test_contrastive.py's networks, their [contrastive] layer's delta, cost and accuracy,
and tests/data/darknet_yolo_reject.npz: AB's [yolo] over consecutive passes with its bad-label
rejection (tests/test_yolo_reject.py).
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def main(darknet):
    from darknet_forward_oracle import compile_against
    from test_darknet_heads import (CASES, CRNN_CASES, FRAMES, LOCAL_CASES, case_inputs,
                                    cfg_text, crnn_inputs, darknet_truths, local_inputs)
    darknet = pathlib.Path(darknet).resolve()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        exe = compile_against(darknet, "darknet_heads_oracle.c", tmp / "heads")
        env = dict(os.environ, LD_LIBRARY_PATH=str(darknet))
        for name in CASES:
            layer, x, truths, seen = case_inputs(name)
            cfg = tmp / f"{name}.cfg"
            cfg.write_text(cfg_text(name))
            x.astype(np.float32).tofile(tmp / "x.bin")
            darknet_truths(layer, truths).astype(np.float32).tofile(tmp / "t.bin")
            subprocess.run([str(exe), str(cfg), str(tmp / "x.bin"), str(tmp / "t.bin"),
                            str(seen), str(tmp / "o.bin")], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            raw = np.fromfile(tmp / "o.bin", np.float32)
            n = (raw.size - 1) // 2
            out[f"{name}_output"], out[f"{name}_delta"] = raw[:n], raw[n:2 * n]
            out[f"{name}_cost"] = raw[-1:]
            print(f"{name}: cost {raw[-1]:.6g}")
        for name, case in LOCAL_CASES.items():
            net, x, params, delta = local_inputs(name)
            layer = net.layers[1]
            cfg = tmp / f"{name}.cfg"
            cfg.write_text(case["cfg"])
            for array, file in ((x, "x"), (params, "p"), (delta, "d")):
                array.astype(np.float32).tofile(tmp / f"{file}.bin")
            np.zeros(0, np.float32).tofile(tmp / "t.bin")
            subprocess.run([str(exe), str(cfg), str(tmp / "x.bin"), str(tmp / "t.bin"), "0",
                            str(tmp / "o.bin"), str(tmp / "p.bin"), str(tmp / "d.bin")],
                           check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            raw = np.fromfile(tmp / "o.bin", np.float32)
            sizes = {"output": 2 * layer.outputs, "delta": 2 * layer.outputs, "cost": 1,
                     "dx": x.size, "weight_updates": layer.params["weights"].size,
                     "bias_updates": layer.outputs}
            offset = 0
            for key, size in sizes.items():
                out[f"{name}_{key}"] = raw[offset:offset + size]
                offset += size
            assert offset == raw.size, (name, offset, raw.size)
            print(f"{name}: |dx| {np.abs(out[name + '_dx']).max():.4g}")
        for name, case in CRNN_CASES.items():
            net, frames = crnn_inputs(name)
            cfg = tmp / f"{name}.cfg"
            cfg.write_text(case["cfg"])
            net.save_weights(str(tmp / "w.weights"))
            frames.astype(np.float32).tofile(tmp / "x.bin")
            subprocess.run([str(exe), str(cfg), str(tmp / "x.bin"), "-", f"frames={FRAMES}",
                            str(tmp / "o.bin"), str(tmp / "w.weights")], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[f"{name}_outputs"] = np.fromfile(tmp / "o.bin", np.float32)
            print(f"{name}: {out[name + '_outputs'].size} values")
        contrastive = contrastive_cases(exe, env, tmp)
        reject = reject_cases(exe, env, tmp)
    target = ROOT / "tests" / "data" / "darknet_heads.npz"
    target.parent.mkdir(exist_ok=True)
    np.savez_compressed(target, **out)
    print(f"wrote {target}")
    target = ROOT / "tests" / "data" / "darknet_contrastive.npz"
    np.savez_compressed(target, **contrastive)
    print(f"wrote {target}")
    target = ROOT / "tests" / "data" / "darknet_yolo_reject.npz"
    np.savez_compressed(target, **reject)
    print(f"wrote {target}")


def reject_cases(exe, env, tmp):
    """tests/test_yolo_reject.py's CASES: AB's [yolo] over PASSES passes at an iteration, each
    pass's delta and cost."""
    from test_yolo_reject import CASES, PASSES, case_inputs, cfg_text
    out = {}
    for name, case in CASES.items():
        cfg = tmp / f"{name}.cfg"
        cfg.write_text(cfg_text(name))
        x, truths = case_inputs(name)
        x.tofile(tmp / "x.bin")
        truths.tofile(tmp / "t.bin")
        subprocess.run([str(exe), str(cfg), str(tmp / "x.bin"), str(tmp / "t.bin"),
                        f"passes={PASSES}:{case['iteration']}", str(tmp / "o.bin")],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raw = np.fromfile(tmp / "o.bin", np.float32).reshape(PASSES, -1)
        out[f"{name}_delta"], out[f"{name}_cost"] = raw[:, :-1], raw[:, -1]
        print(f"{name}: costs {raw[:, -1]}")
    return out


def contrastive_cases(exe, env, tmp):
    """tests/test_contrastive.py's CASES: the whole network's training forward in AB, its
    [contrastive] layer's delta, cost and accuracy."""
    from test_contrastive import CASES, case_inputs, cfg_text
    out = {}
    for name in CASES:
        net, x, truths = case_inputs(name)
        cfg = tmp / f"{name}.cfg"
        cfg.write_text(cfg_text(name))
        net.save_weights(str(tmp / "w.weights"))
        x.astype(np.float32).tofile(tmp / "x.bin")
        truths.astype(np.float32).tofile(tmp / "t.bin")
        subprocess.run([str(exe), str(cfg), str(tmp / "x.bin"), str(tmp / "t.bin"),
                        f"network={tmp / 'w.weights'}", str(tmp / "o.bin")], check=True,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raw = np.fromfile(tmp / "o.bin", np.float32)
        out[f"{name}_delta"], out[f"{name}_cost"], out[f"{name}_loss"] = \
            raw[:-2], raw[-2:-1], raw[-1:]
        print(f"{name}: cost {raw[-2]:.6g}, accuracy {raw[-1]:.0f}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "darknet")
