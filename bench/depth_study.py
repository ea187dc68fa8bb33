"""The Mish paper's Figure 5a with pydarknet: test top-1 against the number of convolutional
layers (the study CNN of bench/study_common.py, 3x3 convs with batch norm, no residual
connections) for mish, swish and relu.

    python bench/depth_study.py                 # depths 4 8 12 16, 1 seed: about 10-15 min on
                                                # 2 idle cores (estimated, not measured)
    python bench/depth_study.py --depths 4 6 8 10 12 14 16 --seeds 3 --train-images 0

Writes OUT.md (mean top-1 per depth and activation), OUT.json (every run; resumes) and OUT.png
(top-1 against depth, mean and lowest..highest band). OUT: bench/results/depth-study.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import study_common as S  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    S.add_common_arguments(p, "bench/results/depth-study", train_images=10000,
                           test_images=2000, epochs=2, seeds=1)
    p.add_argument("--activations", nargs="+", default=["mish", "swish", "relu"])
    p.add_argument("--depths", type=int, nargs="+", default=[4, 8, 12, 16])
    a = p.parse_args(argv)
    if a.gpu is not None:
        a.jobs = 1
    # the deepest first: the longest runs start early, so the last ones to finish are short
    jobs = [S.job(a, f"depth-{act}-d{d}-s{seed}", {"activation": act, "depth": d}, seed)
            for d in sorted(a.depths, reverse=True) for seed in range(1, a.seeds + 1)
            for act in a.activations]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    records = S.run_jobs(jobs, a.out + ".json", S.settings_of(a), a.jobs,
                         report_only=a.report_only)
    wanted = {j["key"] for j in jobs}
    records = [r for r in records if r["key"] in wanted]
    if not records:
        return 1
    stats = S.group_stats(records, lambda r: (r["options"]["activation"],
                                              r["options"]["depth"]))
    depths = sorted({d for _, d in stats})
    note = a.note or f"Machine: {S.machine_note()}."
    lines = [f"Test top-1 (%) against depth (3x3 conv layers with batch norm, no residuals; "
             f"width {a.width}): {a.train_images or 'all'} training images, {a.epochs} epochs "
             f"of batch {a.batch}, {a.test_images or 'all'} test images of {a.data}; "
             f"seeds 1..{a.seeds} (mean ± std where more than one). {note}", "",
             "| Activation | " + " | ".join(f"{d} layers" for d in depths) + " |",
             "|---|" + "---:|" * len(depths)]
    series = {}
    for act in a.activations:
        cells, xs, ys, lo, hi = [], [], [], [], []
        for d in depths:
            s = stats.get((act, d))
            if s is None:
                cells.append("-")
                continue
            cells.append(f"{s['top1_mean'] * 100:.2f}" + (f" ± {s['top1_std'] * 100:.2f}"
                                                          if s["runs"] > 1 else ""))
            xs.append(d)
            ys.append(s["top1_mean"])
            runs = [r["top1"] for r in records if r["options"]["activation"] == act
                    and r["options"]["depth"] == d]
            lo.append(min(runs))
            hi.append(max(runs))
        lines.append(f"| {act} | " + " | ".join(cells) + " |")
        if xs:
            series[act] = (xs, ys, lo, hi)
    S.write_markdown(a.out + ".md", "\n".join(lines))
    S.plot_lines(a.out + ".png", series, "Test top-1 against depth", "conv layers", "top-1")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
