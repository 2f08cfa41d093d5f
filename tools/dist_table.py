#!/usr/bin/env python3
"""Writes the computed tables of docs/distributed.md from measured runs (issue 18).

    python3 tools/dist_table.py [--perf build/perf/perf.json] [--doc docs/distributed.md]
                                [--ring-json build/ci-mpi/ring_balance.json]

Measured figures are never typed by hand: this script writes them.
  --perf       the JSON of a perf-row run (bash tools/perf.sh). Its result
               "attn-causal-4096/d128/tiled/t1" (emask's tiled attention, causal, S = 4096,
               D = 128, 8 heads, float, one thread) gives the kernel's flop rate, counted as
               bench/perf/emask_perf.cpp counts it: 4 D flops per kept (query, key) pair and
               head, S (S + 1) / 2 kept pairs. The table "when compute hides communication"
               is written between <!-- dist-table begin --> and <!-- dist-table end -->.
  --ring-json  optional: the --json output of tests/mpi/ring_balance (the CI mpi row writes
               build/ci-mpi/ring_balance.json); written between <!-- ring-balance begin --> and
               <!-- ring-balance end -->. Without it that section is left as it is.
  --doc        the Markdown file to update (default docs/distributed.md)

The model, per ring step and per rank (R ranks, sequence S, D = 128, H query heads, Hkv K/V
heads, float32 K and V, zigzag layout, causal mask):
  compute  = (1/2) (S/R)^2 * 4 D H flops / rate   (each step of a zigzag ring computes exactly
             half of the (S/R) x (S/R) block pair: see the partition pictures)
  transfer = 2 (S/R) Hkv D * 4 bytes * 8 / bandwidth
  hides when compute >= transfer
Exit codes: 0 done, 1 the doc lacks a marker pair (nothing written), 2 bad arguments or JSON.
Output is deterministic: the same inputs give a byte-identical file. Standard library only.
"""
import argparse
import json
import os
import sys

PERF_RESULT = "attn-causal-4096/d128/tiled/t1"
# The shape emask_perf measures that result on (bench/perf/emask_perf.cpp, attention()).
PERF_S, PERF_D, PERF_H = 4096, 128, 8

# The stated configuration of the table.
D = 128
H = 32
HKV = 8
BYTES = 4  # float32
SEQS = [(128 * 1024, "128k"), (256 * 1024, "256k"), (512 * 1024, "512k"), (1024 * 1024, "1M")]
RANKS = [8, 16, 64]
GBITS = [25, 100]

TABLE = ("<!-- dist-table begin -->", "<!-- dist-table end -->")
RING = ("<!-- ring-balance begin -->", "<!-- ring-balance end -->")


def die(code, msg):
    print("dist_table: " + msg, file=sys.stderr)
    sys.exit(code)


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die(2, "cannot read %s: %s" % (path, e))


def perf_rate(perf, path):
    """Flop rate (flop/s) of the measured result, and the run's description."""
    for key in ("results", "cpu", "date"):
        if key not in perf:
            die(2, "%s: no '%s' (not a perf.json of bench/perf/emask_perf.cpp?)" % (path, key))
    found = [r for r in perf["results"] if isinstance(r, dict) and r.get("name") == PERF_RESULT]
    if not found:
        die(2, "%s: no result named %s (run bash tools/perf.sh)" % (path, PERF_RESULT))
    ms = found[0].get("ms")
    if not isinstance(ms, (int, float)) or not ms > 0:
        die(2, "%s: result %s has no positive 'ms'" % (path, PERF_RESULT))
    flops = PERF_S * (PERF_S + 1) / 2 * 4 * PERF_D * PERF_H
    rate = flops / (ms * 1e-3)
    # The bench's note prints the same figure, truncated to GFLOP/s: a mismatch means its shape
    # changed and PERF_S/D/H above must follow.
    note = str(found[0].get("note", ""))
    if note.endswith("GFLOP/s"):
        try:
            noted = float(note.split()[0])
        except ValueError:
            noted = None
        if noted is not None and abs(noted - rate * 1e-9) > 1.0:
            die(2, "%s: %s reports '%s' but the shape S=%d, D=%d, H=%d gives %.1f GFLOP/s: "
                "update PERF_S/PERF_D/PERF_H in tools/dist_table.py"
                % (path, PERF_RESULT, note, PERF_S, PERF_D, PERF_H, rate * 1e-9))
    return rate, ms


def fmt_time(s):
    if s >= 1.0:
        return "%.2f s" % s
    if s >= 1e-3:
        return "%.1f ms" % (s * 1e3)
    return "%.0f us" % (s * 1e6)


def fmt_bytes(b):
    if b >= 1 << 30:
        return "%.2f GiB" % (b / float(1 << 30))
    return "%.0f MiB" % (b / float(1 << 20))


def table_text(perf, perf_path, rate, ms, command):
    lines = []
    run = "%s, %s, %s" % (perf.get("cpu", "?"), perf.get("compiler", "?"), perf.get("simd", "?"))
    lines.append("Measured kernel speed: `%s` = %.3f ms for causal S = %d, D = %d, %d heads "
                 "(one thread), i.e. **%.1f GFLOP/s** per core (%s; run of %s, `%s`)."
                 % (PERF_RESULT, ms, PERF_S, PERF_D, PERF_H, rate * 1e-9, run,
                    perf.get("date", "?"), perf_path))
    lines.append("")
    lines.append("Stated configuration: D = %d, H = %d query heads, Hkv = %d K/V heads (GQA), "
                 "float32, causal mask, zigzag layout. Per ring step and per rank:" % (D, H, HKV))
    lines.append("")
    lines.append("- compute = (1/2) (S/R)^2 x 4 D H flops / (%.1f GFLOP/s x c), c = cores per "
                 "rank (1 below);" % (rate * 1e-9))
    lines.append("- transfer = 2 (S/R) Hkv D x 4 bytes / bandwidth;")
    lines.append("- compute hides the transfer when compute >= transfer. **Margin** = compute / "
                 "transfer at c = 1: a rank may compute this many times faster than one measured "
                 "core (more cores, an accelerator) before the network shows.")
    lines.append("")
    head = "| S | R | S/R | K+V shard / step | compute / step (1 core) |"
    sep = "|---|---|---|---|---|"
    for g in GBITS:
        head += " transfer @ %d Gb/s | margin @ %d Gb/s |" % (g, g)
        sep += "---|---|"
    lines.append(head)
    lines.append(sep)
    for s, label in SEQS:
        for r in RANKS:
            n = s // r
            flops = 0.5 * n * n * 4 * D * H
            compute = flops / rate
            shard = 2 * n * HKV * D * BYTES
            row = "| %s | %d | %d | %s | %s |" % (label, r, n, fmt_bytes(shard), fmt_time(compute))
            for g in GBITS:
                transfer = shard * 8 / (g * 1e9)
                margin = compute / transfer
                row += " %s | %s %.0fx |" % (fmt_time(transfer), "hides," if margin >= 1 else
                                               "**exposed**,", margin)
            lines.append(row)
    lines.append("")
    # compute / transfer = (S/R) H bw / (32 Hkv rate): S/R at which one core stops hiding.
    mins = " and ".join("%d positions per rank at %d Gb/s" % (-(-32 * HKV * rate // (H * g * 1e9)), g)
                        for g in GBITS)
    lines.append("The margin grows with S/R only (compute ~ (S/R)^2, transfer ~ S/R): "
                 "compute / transfer = (S/R) H bw / (32 Hkv rate), with bw in bit/s and rate in "
                 "flop/s, so one core hides the transfer from S/R = %s on; a rank c times faster "
                 "needs c times longer shards. A non-causal (full) mask doubles the compute and "
                 "the margin." % mins)
    lines.append("")
    lines.append("Regenerate: `%s`" % command)
    return "\n".join(lines)


def ring_text(ring, path):
    """Any JSON object: its scalar fields as a list, each list of objects as a table."""
    if not isinstance(ring, dict):
        die(2, "%s: expected a JSON object" % path)
    lines = ["From `%s` (tests/mpi/ring_balance --json):" % path, ""]
    for k, v in ring.items():
        if not isinstance(v, (list, dict)):
            lines.append("- %s: %s" % (k, fmt_cell(v)))
    for k, v in ring.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            keys = []
            for x in v:
                for kk in x:
                    if kk not in keys:
                        keys.append(kk)
            lines.append("")
            lines.append("%s:" % k)
            lines.append("")
            lines.append("| " + " | ".join(keys) + " |")
            lines.append("|" + "---|" * len(keys))
            for x in v:
                lines.append("| " + " | ".join(fmt_cell(x.get(kk, "")) for kk in keys) + " |")
        elif isinstance(v, dict):
            lines.append("")
            lines.append("%s: %s" % (k, ", ".join("%s = %s" % (a, fmt_cell(b))
                                                    for a, b in v.items())))
    return "\n".join(lines)


def fmt_cell(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "%.4g" % v
    return str(v).replace("|", "\\|")


def replace_between(text, markers, body, doc):
    begin, end = markers
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        die(1, "%s: no %s ... %s markers" % (doc, begin, end))
    return text[:i + len(begin)] + "\n" + body + "\n" + text[j:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--perf", default="build/perf/perf.json")
    ap.add_argument("--doc", default="docs/distributed.md")
    ap.add_argument("--ring-json", default=None)
    args = ap.parse_args()

    perf = load_json(args.perf)
    rate, ms = perf_rate(perf, args.perf)
    try:
        with open(args.doc, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        die(1, "cannot read %s: %s" % (args.doc, e))
    command = "python3 tools/dist_table.py --perf %s" % args.perf
    if args.doc != "docs/distributed.md":
        command += " --doc %s" % args.doc
    if args.ring_json and os.path.exists(args.ring_json):
        command += " --ring-json %s" % args.ring_json
    text = replace_between(text, TABLE, table_text(perf, args.perf, rate, ms, command), args.doc)
    if args.ring_json:
        if os.path.exists(args.ring_json):
            text = replace_between(text, RING, ring_text(load_json(args.ring_json),
                                                         args.ring_json), args.doc)
        else:
            print("dist_table: %s not found: the ring-balance section is left as it is"
                  % args.ring_json, file=sys.stderr)
    with open(args.doc, "w", encoding="utf-8") as f:
        f.write(text)
    print("dist_table: wrote %s (%.1f GFLOP/s from %s)" % (args.doc, rate * 1e-9, args.perf))


if __name__ == "__main__":
    main()
