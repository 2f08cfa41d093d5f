#!/usr/bin/env python3
"""Ratio table of bench_attention from one run (python3 standard library only).

    bench_attention --benchmark_format=json --benchmark_repetitions=3 > attn.json
    python3 bench/summary.py attn.json

Takes the median over repetitions (or the single run), and prints per shape and thread count the
time of each variant, the GFLOP/s counters, and the ratios the targets are stated in:
naive / tiled, window / causal (same variant, same threads) and 1 thread / 2 threads.
"""
import json
import re
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = defaultdict(list)
    counters = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        m = re.match(r"BM_attention/([^/]+)/([^/]+)/threads:(\d+)", b["name"])
        if not m:
            continue
        key = (m.group(1), m.group(2), int(m.group(3)))
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
        runs[key].append(b["real_time"] * scale)
        counters.setdefault(key, []).append(
            (b.get("GFLOPs_dense", 0.0), b.get("GFLOPs_done", 0.0), b.get("workspace_MiB", 0.0)))
    med = {k: statistics.median(v) for k, v in runs.items()}
    cnt = {k: tuple(statistics.median(c[i] for c in v) for i in range(3)) for k, v in counters.items()}
    return med, cnt


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    med, cnt = load(sys.argv[1])
    if not med:
        print("no BM_attention entries found")
        return 1
    shapes = sorted({k[0] for k in med}, key=lambda s: (s.split("-")[1], int(s.split("-")[-1])))
    print("| shape | variant | threads | median ms | GFLOP/s dense-eq | GFLOP/s done | workspace MiB |")
    print("|---|---|---|---|---|---|---|")
    for s in shapes:
        for var in ("naive", "tiled", "decode"):
            for t in (1, 2):
                k = (s, var, t)
                if k in med:
                    d, w, ws = cnt[k]
                    print(f"| {s} | {var} | {t} | {med[k]:.3f} | {d:.1f} | {w:.1f} | {ws:.2f} |")
    print()
    print("| ratio | threads | value |")
    print("|---|---|---|")
    for s in shapes:
        for t in (1, 2):
            if (s, "naive", t) in med and (s, "tiled", t) in med:
                print(f"| naive / tiled, {s} | {t} | {med[(s, 'naive', t)] / med[(s, 'tiled', t)]:.2f}x |")
    for var in ("tiled", "naive"):
        for t in (1, 2):
            w, c = ("attn-window-4096", var, t), ("attn-causal-4096", var, t)
            if w in med and c in med:
                print(f"| window / causal 4096 ({var}) | {t} | {med[w] / med[c]:.3f} |")
    for s in shapes:
        for var in ("naive", "tiled", "decode"):
            if (s, var, 1) in med and (s, var, 2) in med:
                print(f"| 1 thread / 2 threads, {s} {var} | - | {med[(s, var, 1)] / med[(s, var, 2)]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
