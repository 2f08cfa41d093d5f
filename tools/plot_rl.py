#!/usr/bin/python3
"""Plot the tic-tac-toe learning curves written by examples/rl_tictactoe --csv.

    /usr/bin/python3 tools/plot_rl.py OUT.png RUN0.csv [RUN1.csv ...]

Each CSV is one seed. Left: greedy win rate against the random opponent (mean over seeds,
band = min..max). Right: illegal moves of the penalty agent: attempted during training
(cumulative, left axis) and the fraction of greedy evaluation games lost to an illegal move
(right axis). The masked agent has 0 of both by construction and is drawn as a flat line.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def band(runs, key):
    cols = list(zip(*[r[key] for r in runs]))
    return ([sum(c) / len(c) for c in cols], [min(c) for c in cols], [max(c) for c in cols])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, paths = sys.argv[1], sys.argv[2:]
    runs = [load(p) for p in paths]
    x = runs[0]["episodes"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))

    for key, label, color in (("masked_win", "action masking", "tab:blue"),
                              ("penalty_win", "illegal-move penalty", "tab:red")):
        mean, lo, hi = band(runs, key)
        ax1.plot(x, mean, color=color, label=label)
        ax1.fill_between(x, lo, hi, color=color, alpha=0.2)
    ax1.axhline(0.585, color="gray", linestyle=":", label="random legal play (58.5%)")
    ax1.set_xlabel("training episodes")
    ax1.set_ylabel("greedy win rate vs random opponent")
    ax1.set_ylim(0, 1.02)
    ax1.set_title("Win rate (%d seeds, band = min..max)" % len(runs))
    ax1.legend(loc="lower right")
    ax1.grid(alpha=0.3)

    mean, lo, hi = band(runs, "penalty_train_illegal")
    ax2.plot(x, mean, color="tab:red", label="penalty: illegal moves in training (cumulative)")
    ax2.fill_between(x, lo, hi, color="tab:red", alpha=0.2)
    mean_m, _, _ = band(runs, "masked_train_illegal")
    ax2.plot(x, mean_m, color="tab:blue", label="masking: illegal moves in training (always 0)")
    ax2.set_xlabel("training episodes")
    ax2.set_ylabel("illegal moves attempted (cumulative)")
    ax2.grid(alpha=0.3)
    ax3 = ax2.twinx()
    mean, lo, hi = band(runs, "penalty_eval_illegal")
    ax3.plot(x, mean, color="tab:orange", linestyle="--",
             label="penalty: eval games lost to an illegal move")
    ax3.set_ylabel("fraction of greedy eval games")
    ax3.set_ylim(0, 1.02)
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="center right", fontsize=8)
    ax2.set_title("Illegal-move attempts")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("wrote", out)


if __name__ == "__main__":
    main()
