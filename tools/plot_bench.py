#!/usr/bin/env python3
"""Turns Google Benchmark JSON output of emask's benchmarks into PNG bar charts.

    python3 tools/plot_bench.py build/bench/results/*.json --out docs/img

One chart per kernel (BM_attention, BM_softmax, ...): one group of bars per shape, one bar per
variant, at the thread count given with --threads (default 1). Times are medians when the run
has repetitions (--benchmark_repetitions), else the plain time. Needs matplotlib (Debian:
python3-matplotlib, used through /usr/bin/python3).
"""
import argparse
import collections
import json
import os
import re
import sys

VARIANTS = ["naive", "fused", "tiled", "decode", "masked", "unmasked"]


def parse_name(name):
    """BM_kernel/.../threads:N -> (kernel, shape, variant, threads)."""
    parts = name.split("/")
    kernel, threads, variant, shape = parts[0], 1, None, []
    for p in parts[1:]:
        if p.startswith("threads:"):
            threads = int(p.split(":")[1])
        elif p in VARIANTS and variant is None:
            variant = p
        elif p.startswith(("real_time", "process_time", "min_time", "repeats", "iterations")):
            continue
        else:
            shape.append(p)
    return kernel, "/".join(shape), variant or "default", threads


def load(paths):
    """{kernel: {shape: {variant: ms}}} per thread count, medians preferred."""
    table = collections.defaultdict(lambda: collections.defaultdict(dict))
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        rows = data.get("benchmarks", [])
        have_median = any(r.get("aggregate_name") == "median" for r in rows)
        for r in rows:
            if have_median and r.get("aggregate_name") != "median":
                continue
            if not have_median and r.get("run_type") == "aggregate":
                continue
            name = r.get("run_name", r["name"])
            kernel, shape, variant, threads = parse_name(name)
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[r.get("time_unit", "ns")]
            table[(kernel, threads)][shape][variant] = r["real_time"] * scale
    return table


def plot(table, threads, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for (kernel, thr), shapes in sorted(table.items()):
        if thr != threads:
            continue
        # Natural order: attn-causal-512 before attn-causal-1024.
        names = sorted(shapes, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
        variants = [v for v in VARIANTS + ["default"] if any(v in shapes[s] for s in names)]
        width = 0.8 / max(1, len(variants))
        fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4))
        for i, v in enumerate(variants):
            xs = [j + i * width for j, s in enumerate(names) if v in shapes[s]]
            ys = [shapes[s][v] for s in names if v in shapes[s]]
            bars = ax.bar(xs, ys, width, label=v)
            for x, y in zip(xs, ys):
                ax.text(x, y, f"{y:.3g}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks([j + width * (len(variants) - 1) / 2 for j in range(len(names))])
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("median time per call, ms (log scale)")
        ax.set_title(f"{kernel}, {thr} thread{'s' if thr > 1 else ''}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"bench_{kernel.replace('BM_', '')}_t{thr}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", help="Google Benchmark --benchmark_out files (JSON)")
    ap.add_argument("--out", default=".", help="directory for the PNG files")
    ap.add_argument("--threads", type=int, default=1, help="thread count to chart")
    args = ap.parse_args()
    table = load(args.json)
    if not table:
        sys.exit("plot_bench: no benchmark rows in the input")
    os.makedirs(args.out, exist_ok=True)
    for path in plot(table, args.threads, args.out):
        print("wrote", path)


if __name__ == "__main__":
    main()
