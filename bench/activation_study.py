"""The Mish paper's Table 1 with pydarknet: the same small Darknet CNN (six 3x3 convolutions
with batch norm, bench/study_common.py) trained once per activation and seed through
pydarknet's classifier training path, test top-1 by `classifier valid`'s code.

    make fashion-mnist                         # data/fashion-mnist/ (Debian's package, converted)
    python bench/activation_study.py           # 10,000 training images, 3 epochs, 3 seeds,
                                               # 2,000 test images: about 20-30 min on 2 idle
                                               # cores (estimated from 0.3 s per iteration)
    python bench/activation_study.py --train-images 0 --test-images 0 --epochs 10 --seeds 5
    python bench/activation_study.py --gpu 0 --jobs 1 --train-images 0 --test-images 0

Writes OUT.md (mean top-1, mean test loss, standard deviation of top-1, runs: Table 1's
columns), OUT.json (every run, with its per-epoch test top-1; a stopped study resumes from it)
and OUT.png (test top-1 per epoch per activation: the mean, and a band from the lowest to the
highest run). OUT defaults to bench/results/activation-study.

SoftPlus is not in the study: Darknet has no softplus activation (AB's darknet
include/darknet.h lists LOGISTIC ... HARD_MISH; softplus is only the helper inside mish), so a
Darknet cfg cannot name it.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import study_common as S  # noqa: E402


def markdown(stats, a, note):
    rows = sorted(stats.items(), key=lambda kv: -kv[1]["top1_mean"])
    lines = [f"Test top-1 of the study CNN (depth 6, width {a.width}) per activation: "
             f"{a.train_images or 'all'} training images, {a.epochs} epochs of batch {a.batch}, "
             f"test on {a.test_images or 'all'} test images of {a.data}; "
             f"seeds 1..{a.seeds}. {note}", "",
             "| Activation | Mean top-1 (%) | Mean test loss | Std of top-1 (%) | Runs | "
             "Mean time per run (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for act, s in rows:
        lines.append(f"| {act} | {s['top1_mean'] * 100:.2f} | {s['loss_mean']:.4f} | "
                     f"{s['top1_std'] * 100:.2f} | {s['runs']} | {s['seconds_mean']:.0f} |")
    lines.append("")
    lines.append("SoftPlus: not run; Darknet has no softplus activation (only the helper "
                 "inside mish), so no Darknet cfg can use it.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    S.add_common_arguments(p, "bench/results/activation-study", train_images=10000,
                           test_images=2000, epochs=3, seeds=3)
    p.add_argument("--activations", nargs="+", default=list(S.TABLE1_ACTIVATIONS))
    p.add_argument("--depth", type=int, default=6)
    a = p.parse_args(argv)
    if a.gpu is not None:
        a.jobs = 1
    jobs = [S.job(a, f"act-{act}-d{a.depth}-s{seed}", {"activation": act, "depth": a.depth},
                  seed)
            for seed in range(1, a.seeds + 1) for act in a.activations]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    records = S.run_jobs(jobs, a.out + ".json", S.settings_of(a, depth=a.depth), a.jobs,
                         report_only=a.report_only)
    wanted = {j["key"] for j in jobs}
    records = [r for r in records if r["key"] in wanted]
    if not records:
        return 1
    stats = S.group_stats(records, lambda r: r["options"]["activation"])
    note = a.note or f"Machine: {S.machine_note()}."
    S.write_markdown(a.out + ".md", markdown(stats, a, note))
    order = sorted(stats, key=lambda k: -stats[k]["top1_mean"])
    series = {k: (stats[k]["epochs"], stats[k]["curve_mean"], stats[k]["curve_min"],
                  stats[k]["curve_max"]) for k in order}
    S.plot_lines(a.out + ".png", series, "Test top-1 per epoch (mean; band: lowest..highest "
                 "run)", "epoch", "top-1")
    print(markdown(stats, a, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
