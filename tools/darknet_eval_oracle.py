"""Regenerate tests/data/darknet_eval.npz, AB Darknet's own evaluation commands on the tests'
networks and images:

- ``classifier_<mode>``: the scores AB's `classifier valid`, `validcrop`, `valid10`,
  `validmulti` and `validfull` sum over their views of each image
  (tests/test_classifier_valid.py), through tools/darknet_classifier_oracle.c, which sums
  network_predict over the views as AB's validate_classifier_* functions make them
  (load_image_color, resize_min, crop_image, flip_image, resize_network);
- ``recall_yolo``, ``recall_region``: the numbers of the line AB's `detector recall` prints
  after each image (tests/test_recall.py), from the darknet program itself;
- ``rnn_valid``: count, perplexity and word perplexity of each line AB's `rnn valid` prints
  (tests/test_rnn_cli.py), from the darknet program;
- ``rnn_vec``: the state AB's `rnn vec` prints after one word (tests/test_rnn_cli.py).

    # AB Darknet (commit 59596d7, as the reference data), program and CPU library:
    git clone https://github.com/AlexeyAB/darknet && cd darknet && make LIBSO=1
    python tools/darknet_eval_oracle.py path/to/darknet
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

OUT = ROOT / "tests" / "data" / "darknet_eval.npz"


def classifier_scores(darknet, tmp, env):
    from darknet_forward_oracle import compile_against
    from test_classifier_valid import CFG, MODES, oracle_inputs
    net, images = oracle_inputs()
    exe = compile_against(darknet, "darknet_classifier_oracle.c", tmp / "classifier")
    (tmp / "c.cfg").write_text(CFG)
    net.save_weights(str(tmp / "c.weights"))
    paths = []
    for i, img in enumerate(images):
        paths.append(str(tmp / f"c{i}.png"))
        cv2.imwrite(paths[-1], img)
    out = {}
    for mode, command in MODES.items():
        subprocess.run([str(exe), str(tmp / "c.cfg"), str(tmp / "c.weights"), mode,
                        str(tmp / "o.bin"), *paths], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out[f"classifier_{mode}"] = np.fromfile(tmp / "o.bin", np.float32).reshape(
            len(images), -1)
        print(f"classifier {command}: first image {out[f'classifier_{mode}'][0]}")
    return out


def recall_lines(darknet, tmp, env):
    from test_recall import CFGS, lines_as_numbers, recall_inputs, write_data_set
    out = {}
    for head, cfg in CFGS.items():
        net, images, truths = recall_inputs(head)
        folder = tmp / f"recall-{head}"
        folder.mkdir()
        data = write_data_set(folder, images, truths)
        (folder / "d.cfg").write_text(cfg)
        net.save_weights(str(folder / "d.weights"))
        run = subprocess.run([str(darknet / "darknet"), "detector", "recall", str(data),
                              str(folder / "d.cfg"), str(folder / "d.weights")], env=env,
                             cwd=darknet, capture_output=True, text=True, check=True)
        lines = [ln for ln in run.stderr.splitlines() if "RPs/Img:" in ln]
        print(f"detector recall ({head}):\n" + "\n".join(lines))
        out[f"recall_{head}"] = lines_as_numbers(lines)
    return out


def rnn_valid(darknet, tmp, env):
    import re
    from test_rnn_cli import VALID_SEED, VALID_TEXT, valid_network
    net = valid_network(tmp / "v.cfg")
    net.save_weights(str(tmp / "v.weights"))
    run = subprocess.run([str(darknet / "darknet"), "rnn", "valid", str(tmp / "v.cfg"),
                          str(tmp / "v.weights"), "-seed", VALID_SEED.decode()],
                         input=VALID_TEXT, env=env, cwd=darknet, capture_output=True,
                         check=True)
    lines = [ln for ln in run.stdout.decode().splitlines() if "Perplexity" in ln]
    print(f"rnn valid: {lines[-1]}")
    return {"rnn_valid": np.array([[float(v) for v in re.findall(r"[\d.]+", ln)]
                                   for ln in lines])}


def rnn_vec(darknet, tmp, env):
    from test_rnn_cli import vec_network
    net = vec_network(tmp / "w.cfg")
    net.save_weights(str(tmp / "w.weights"))
    run = subprocess.run([str(darknet / "darknet"), "rnn", "vec", str(tmp / "w.cfg"),
                          str(tmp / "w.weights"), "-seed", "ab"], input=b"hello\n", env=env,
                         cwd=darknet, capture_output=True, check=True)
    line = [ln for ln in run.stdout.decode().splitlines() if ln.startswith("hello,")][0]
    print(f"rnn vec: {line[:60]}...")
    return {"rnn_vec": np.array([float(v) for v in line.split(",")[1:]], np.float32)}


def main(darknet):
    darknet = pathlib.Path(darknet).resolve()
    env = dict(os.environ, LD_LIBRARY_PATH=str(darknet))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        out = classifier_scores(darknet, tmp, env)
        out.update(recall_lines(darknet, tmp, env))
        out.update(rnn_valid(darknet, tmp, env))
        out.update(rnn_vec(darknet, tmp, env))
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
