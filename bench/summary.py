#!/usr/bin/env python3
"""Ratio table of bench_attention from one run (python3 standard library only).

    bench_attention --benchmark_format=json --benchmark_repetitions=3 > attn.json
    python3 bench/summary.py attn.json

Takes the median over repetitions (or the single run), and prints per shape and thread count the
time of each variant (wall clock, and CPU time of the main thread: on a loaded shared machine
the CPU time of 1-thread runs is the steadier figure; the GFLOP/s counters use wall time), and
the ratios the targets are stated in, from wall time: naive / tiled, window / causal (same
variant, same threads) and 1 thread / 2 threads. With --cpu, the 1-thread ratios use CPU time.
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
    cpu = defaultdict(list)
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
        cpu[key].append(b["cpu_time"] * scale)
        counters.setdefault(key, []).append(
            (b.get("GFLOPs_dense", 0.0), b.get("GFLOPs_done", 0.0), b.get("workspace_MiB", 0.0)))
    med = {k: statistics.median(v) for k, v in runs.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    cnt = {k: tuple(statistics.median(c[i] for c in v) for i in range(3)) for k, v in counters.items()}
    return med, cmed, cnt


def main():
    use_cpu = "--cpu" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--cpu"]
    if len(args) != 1:
        print(__doc__)
        return 2
    sys.argv[1:] = args
    med, cmed, cnt = load(sys.argv[1])
    if not med:
        print("no BM_attention entries found")
        return 1
    shapes = sorted({k[0] for k in med}, key=lambda s: (s.split("-")[1], int(s.split("-")[-1])))
    print("| shape | variant | threads | median ms (wall) | median ms (CPU, main thread) | GFLOP/s dense-eq | GFLOP/s done | workspace MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for s in shapes:
        for var in ("naive", "tiled", "decode"):
            for t in (1, 2):
                k = (s, var, t)
                if k in med:
                    d, w, ws = cnt[k]
                    print(f"| {s} | {var} | {t} | {med[k]:.3f} | {cmed[k]:.3f} | {d:.1f} | {w:.1f} | {ws:.2f} |")
    wall = dict(med)
    if use_cpu:
        for k in med:
            if k[2] == 1:
                med[k] = cmed[k]
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
            if (s, var, 1) in wall and (s, var, 2) in wall:
                print(f"| 1 thread / 2 threads (wall), {s} {var} | - | {wall[(s, var, 1)] / wall[(s, var, 2)]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
