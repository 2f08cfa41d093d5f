#!/usr/bin/env python3
"""Turns one run of `emask_perf --full --json RUN.json` into the benchmark figures of the docs.

    python3 tools/bench_report.py RUN.json [--readme README.md] [--benchmarks docs/benchmarks.md]
                                  [--img-dir docs/img] [--command "bash tools/perf.sh"]

Benchmark figures are never typed by hand: this script writes them, and only what is asked for.
  --readme       compact table between the markers below in README.md
  --benchmarks   limits table and one section per result group between the same markers
  --img-dir      one SVG bar chart per group, perf_<group>.svg: each result as a fraction of
                 the limit it is measured against (the limit = 100 %), its target marked
  --command      the command quoted as the JSON's origin (default: the emask_perf invocation)

The markers are `<!-- emask-perf:begin -->` and `<!-- emask-perf:end -->`; everything between
them is replaced, a file without them is an error (nothing is appended behind the author's back).
Output is deterministic: the same JSON and arguments give byte-identical files.
Exit codes: 0 done, 1 a target file is missing or lacks the markers (nothing is written),
2 bad command line or bad JSON. Standard library only.
"""
import argparse
import json
import math
import os
import re
import sys
from xml.sax.saxutils import escape

BEGIN = "<!-- emask-perf:begin -->"
END = "<!-- emask-perf:end -->"
KINDS = ("time_ratio", "fraction", "speedup")

# Required keys with their types; the optional ones get defaults, so an older run still reports.
NUM = (int, float)
TOP_KEYS = {"cpu": str, "simd": str, "compiler": str, "date": str, "limits": dict, "results": list}
LIMIT_KEYS = ("fma_gflops_1t", "fma_gflops_2t", "copy_gbs_1t", "read_gbs_1t")
RESULT_KEYS = {"name": str, "group": str, "kind": str, "limit": str, "ms": NUM,
               "limit_value": NUM, "ratio": NUM, "target": NUM, "checked": bool, "pass": bool}
RESULT_DEFAULTS = {"fail_at": 0, "attempts": 1, "note": ""}


class InputError(Exception):
    """Bad JSON: reported with exit code 2."""


class TargetError(Exception):
    """A file to update is missing or lacks the markers: exit code 1."""


# ---------------------------------------------------------------- input


def _typed(obj, key, typ, where):
    if key not in obj:
        raise InputError(f"{where}: missing key '{key}'")
    value = obj[key]
    # bool is an int in Python: do not let `true` pass for a number.
    if not isinstance(value, typ) or (typ is NUM and isinstance(value, bool)):
        raise InputError(f"{where}: '{key}' has the wrong type ({type(value).__name__})")
    if typ is NUM and not math.isfinite(value):  # json accepts NaN and Infinity
        raise InputError(f"{where}: '{key}' is not a finite number")
    return value


def load_run(path):
    """Reads and validates the run; returns the dict with result defaults filled in."""
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not JSON: {e}")
    if not isinstance(run, dict):
        raise InputError(f"{path}: top level is not an object")
    for key, typ in TOP_KEYS.items():
        _typed(run, key, typ, path)
    for key in LIMIT_KEYS:
        if _typed(run["limits"], key, NUM, f"{path}: limits") <= 0:
            raise InputError(f"{path}: limits.{key} must be positive")
    if not run["results"]:
        raise InputError(f"{path}: 'results' is empty")
    for i, r in enumerate(run["results"]):
        where = f"{path}: results[{i}]"
        if not isinstance(r, dict):
            raise InputError(f"{where} is not an object")
        for key, typ in RESULT_KEYS.items():
            _typed(r, key, typ, where)
        for key, default in RESULT_DEFAULTS.items():
            r.setdefault(key, default)
        if r["kind"] not in KINDS:
            raise InputError(f"{where}: unknown kind '{r['kind']}' (known: {', '.join(KINDS)})")
        # Every fraction below divides by or scales the ratio: it must be a positive number.
        if not r["ratio"] > 0 or r["ms"] < 0 or r["target"] < 0:
            raise InputError(f"{where}: ratio must be > 0, ms and target >= 0")
    # Group names become file names: two that map to one file would overwrite each other.
    files = {}
    for group in groups_of(run["results"]):
        other = files.setdefault(svg_name(group), group)
        if other != group:
            raise InputError(f"{path}: groups '{other}' and '{group}' both map to "
                             f"{svg_name(group)}")
    return run


# ---------------------------------------------------------------- numbers


def sig3(v):
    """3 significant digits, but never scientific notation: 0.420, 63.3, 2302."""
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    r = float(f"{v:.3g}")  # round first so 9.996 gives 10.0, not 10.00
    return f"{r:.{max(0, 2 - math.floor(math.log10(abs(r))))}f}"


def pct(v):
    return f"{round(v * 100)} %"


def frac_of_limit(kind, ratio):
    """The share of the limit's speed a ratio (or target) of this kind stands for."""
    if kind == "time_ratio":
        return 1 / ratio
    return ratio / 2 if kind == "speedup" else ratio


def ratio_text(r):
    if r["kind"] == "time_ratio":
        return f"{r['ratio']:.2f}x its time"
    if r["kind"] == "fraction":
        return f"{pct(r['ratio'])} of its GFLOP/s"
    return f"{r['ratio']:.2f}x faster"


def bound_text(kind, v):
    """A target or a CI threshold in the ratio's own unit, with its direction."""
    if kind == "time_ratio":
        return f"<= {v:g}x"
    return f">= {pct(v)}" if kind == "fraction" else f">= {v:g}x"


def fail_text(kind, v):
    """The CI threshold, phrased as the side on which the check fails."""
    if kind == "time_ratio":
        return f"above {v:g}x"
    return f"below {pct(v)}" if kind == "fraction" else f"below {v:g}x"


def target_met(r):
    """None without a target. Note `pass` is the CI check against fail_at, not the target."""
    if r["target"] == 0:
        return None
    if r["kind"] == "time_ratio":
        return r["ratio"] <= r["target"]
    return r["ratio"] >= r["target"]


def met_text(r):
    met = target_met(r)
    text = "-" if met is None else ("yes" if met else "no")
    if r["checked"] and not r["pass"]:
        text += " (CI check failed)"
    return text


def limit_value_text(r):
    if r["kind"] == "fraction":
        return f"{sig3(r['limit_value'])} GFLOP/s"
    if r["kind"] == "speedup":
        return f"{sig3(r['limit_value'])} ms on 1 thread"
    return f"{sig3(r['limit_value'])} ms"


def status(r):
    """Bar colour class, worst first: the CI failure matters more than a missed target."""
    if r["checked"] and not r["pass"]:
        return "failed"
    met = target_met(r)
    return "none" if met is None else ("met" if met else "missed")


def cell(text):
    """A Markdown table cell: pipes and newlines would break the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def row(cells):
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def groups_of(results):
    """{group: [results]} in order of first appearance, the order emask_perf ran them."""
    groups = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    return groups


def svg_name(group):
    return "perf_" + re.sub(r"[^A-Za-z0-9_-]", "_", group) + ".svg"


# ---------------------------------------------------------------- Markdown


def header(run, json_path, command):
    lim = run["limits"]
    threads = run.get("threads_available")
    machine = f"{run['simd']}, {run['compiler']}" + (
        f", {threads} thread{'s' if threads != 1 else ''} available" if threads else "")
    lines = [
        f"_Generated by `tools/bench_report.py` from `{json_path}`: do not edit by hand, "
        "rerun the script._",
        "",
        f"Run of {run['date']} on {run['cpu']} ({machine}), written by `{command}`.",
    ]
    if run.get("full") is False:
        lines.append("**Short run** (without `--full`): figures are indicative only.")
    lines.append(
        f"Limits measured in the same run: FMA loop {sig3(lim['fma_gflops_1t'])} GFLOP/s on "
        f"1 thread and {sig3(lim['fma_gflops_2t'])} GFLOP/s on 2 threads; memcpy "
        f"{sig3(lim['copy_gbs_1t'])} GB/s (bytes read + written); read "
        f"{sig3(lim['read_gbs_1t'])} GB/s.")
    return lines


LEGEND = ("Each kernel is compared with a limit measured beside it in the same run. "
          "Time ratios are kernel time / limit time (lower is better); percentages are the "
          "kernel's GFLOP/s as a share of the FMA loop's (higher is better); speedups are "
          "1-thread time / 2-thread time, the time shown being the 2-thread one.")


def readme_block(run, json_path, command, benchmarks_link):
    def wanted(r):
        return r["name"].split("/")[-1] == "t1" or r["checked"]

    lines = header(run, json_path, command) + [
        "",
        "| shape / variant | ms | measured against | vs the limit | target | met? |",
        "|---|---:|---|---:|---:|:---:|",
    ]
    for r in filter(wanted, run["results"]):
        target = bound_text(r["kind"], r["target"]) if r["target"] else "-"
        lines.append(row([r["name"], sig3(r["ms"]), r["limit"], ratio_text(r), target,
                          met_text(r)]))
    lines += ["", LEGEND]
    if benchmarks_link:
        lines.append(f"Every result, the CI thresholds and charts: "
                     f"[{benchmarks_link}]({benchmarks_link}).")
    return "\n".join(lines)


def benchmarks_block(run, json_path, command, img_prefix):
    lim = run["limits"]
    lines = header(run, json_path, command) + [
        "",
        "| limit | value |",
        "|---|---:|",
        row(["FMA loop, 1 thread", f"{sig3(lim['fma_gflops_1t'])} GFLOP/s"]),
        row(["FMA loop, 2 threads", f"{sig3(lim['fma_gflops_2t'])} GFLOP/s"]),
        row(["memcpy, bytes read + written", f"{sig3(lim['copy_gbs_1t'])} GB/s"]),
        row(["read", f"{sig3(lim['read_gbs_1t'])} GB/s"]),
    ]
    # Limits the script does not know by name are still shown rather than dropped.
    for key in sorted(set(lim) - set(LIMIT_KEYS)):
        lines.append(row([key, lim[key]]))
    lines += [
        "",
        LEGEND,
        "`met?` compares with the target; the CI check fails only past its own, looser "
        "threshold. The charts show every result as a share of its limit's speed "
        "(100 % = the limit).",
    ]
    for group, results in groups_of(run["results"]).items():
        lines += [
            "",
            f"### {group}",
            "",
            f"![{group}: each result as a share of its limit]({img_prefix}{svg_name(group)})",
            "",
            "| result | ms | measured against | limit | vs the limit | share of the limit "
            "| target | met? | CI check | attempts | note |",
            "|---|---:|---|---:|---:|---:|---:|:---:|---|---:|---|",
        ]
        for r in results:
            target = bound_text(r["kind"], r["target"]) if r["target"] else "-"
            if not r["checked"]:
                ci = "not checked"
            else:
                verdict = "pass" if r["pass"] else "**FAIL**"
                ci = f"{verdict} (fails {fail_text(r['kind'], r['fail_at'])})"
            versus = ratio_text(r)
            if r["kind"] == "fraction":  # the kernel's own rate, for comparison with peers
                versus += f" ({sig3(r['ratio'] * r['limit_value'])} GFLOP/s)"
            lines.append(row([
                r["name"], sig3(r["ms"]), r["limit"], limit_value_text(r), versus,
                pct(frac_of_limit(r["kind"], r["ratio"])), target, met_text(r), ci,
                r["attempts"], r["note"] or ""]))
    return "\n".join(lines)


def splice(path, block):
    """The file's text with the block between the markers; TargetError if they are not usable."""
    try:
        # newline="" keeps the file's own line endings outside the block.
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except OSError as e:
        raise TargetError(f"cannot read {path}: {e.strerror}")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise TargetError(f"{path}: needs exactly one '{BEGIN}' followed by one '{END}'; "
                          "add them where the generated figures belong")
    head, rest = text.split(BEGIN)
    tail = rest.split(END)[1]
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


# ---------------------------------------------------------------- SVG

W = 760          # image width
ROW = 26         # height of one bar's row
BAR = 16         # bar thickness
COLOURS = {"met": ("#3a7d44", "target met"), "missed": ("#e0a030", "target missed"),
           "failed": ("#c0392b", "CI check failed"), "none": ("#9a9a9a", "no target")}


def nice_step(top):
    """A tick step of 1, 2.5 or 5 times a power of ten giving at most 8 ticks."""
    step = 0.01
    while True:
        for m in (1, 2.5, 5):
            if top / (step * m) <= 8:
                return step * m
        step *= 10


def f1(v):
    return f"{v:.1f}"


def chart(group, results, run):
    values = [frac_of_limit(r["kind"], r["ratio"]) for r in results]
    targets = [frac_of_limit(r["kind"], r["target"]) if r["target"] else None for r in results]
    # The targets are included so that every marker lands on the axis.
    top = max([1.0] + values + [t for t in targets if t])
    step = nice_step(top)
    top = math.ceil(top / step - 1e-9) * step

    # The name column is as wide as the longest name needs, within bounds; longer names keep
    # their tail (the variant) and the whole name stays in the bar's tooltip.
    max_chars = 44
    longest = min(max_chars, max(len(r["name"]) for r in results))
    x0 = min(330, max(160, 22 + longest * 6.6))
    x1 = W - 60
    scale = (x1 - x0) / top
    y0 = 66
    y_end = y0 + ROW * len(results)
    height = y_end + 62

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="22" font-size="15" font-weight="bold">'
        f'{escape(group)}: share of the limit ({escape(run["cpu"])}, {escape(run["date"])})</text>',
        '<text x="12" y="40" fill="#444444">100 % = the limit measured in the same run; '
        'time ratios as limit time / time, speedups as speedup / 2</text>',
    ]
    for k in range(int(round(top / step)) + 1):  # grid and tick labels
        v = k * step
        x = f1(x0 + v * scale)
        out.append(f'<line x1="{x}" y1="{y0 - 6}" x2="{x}" y2="{y_end}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{x}" y="{y_end + 16}" text-anchor="middle" fill="#444444">'
                   f'{pct(v)}</text>')
    for i, (r, v, t) in enumerate(zip(results, values, targets)):
        y = y0 + i * ROW + (ROW - BAR) / 2
        name = r["name"] if len(r["name"]) <= max_chars else "\u2026" + r["name"][1 - max_chars:]
        tip = (f"{r['name']}: {ratio_text(r)} ({r['limit']}), target "
               f"{bound_text(r['kind'], r['target']) if r['target'] else 'none'}, {met_text(r)}")
        out += [
            f"<g><title>{escape(tip)}</title>",
            f'<text x="{f1(x0 - 8)}" y="{f1(y + BAR - 4)}" text-anchor="end">{escape(name)}</text>',
            f'<rect x="{f1(x0)}" y="{f1(y)}" width="{f1(max(1.0, v * scale))}" height="{BAR}" '
            f'fill="{COLOURS[status(r)][0]}"/>',
        ]
        # The value goes right of the bar, hopping over a target or limit line it would cover.
        label_x = x0 + v * scale + 5
        for m in sorted([x0 + scale] + ([x0 + t * scale] if t else [])):
            if label_x - 3 <= m <= label_x + 8 * len(pct(v)):
                label_x = m + 5
        out.append(f'<text x="{f1(label_x)}" y="{f1(y + BAR - 4)}">{pct(v)}</text>')
        if t:
            x = f1(x0 + t * scale)
            out.append(f'<line x1="{x}" y1="{f1(y - 4)}" x2="{x}" y2="{f1(y + BAR + 4)}" '
                       'stroke="#000000" stroke-width="2"/>')
        out.append("</g>")
    x = f1(x0 + scale)  # the limit: drawn last so no bar hides it
    out += [
        f'<line x1="{f1(x0)}" y1="{y0 - 6}" x2="{f1(x0)}" y2="{y_end}" stroke="#444444"/>',
        f'<line x1="{x}" y1="{y0 - 6}" x2="{x}" y2="{y_end}" stroke="#444444" '
        'stroke-dasharray="5,3"/>',
        f'<text x="{x}" y="{y0 - 10}" text-anchor="middle" fill="#444444">limit</text>',
    ]
    # Legend: the colours present, in a fixed order, then the target marker.
    lx, ly = 12.0, y_end + 42
    for key in ("met", "missed", "failed", "none"):
        if any(status(r) == key for r in results):
            colour, label = COLOURS[key]
            out.append(f'<rect x="{f1(lx)}" y="{ly - 10}" width="12" height="12" '
                       f'fill="{colour}"/>')
            out.append(f'<text x="{f1(lx + 17)}" y="{ly}">{label}</text>')
            lx += 17 + 7 * len(label) + 18
    if any(targets):
        out.append(f'<line x1="{f1(lx + 5)}" y1="{ly - 12}" x2="{f1(lx + 5)}" y2="{ly + 3}" '
                   'stroke="#000000" stroke-width="2"/>')
        out.append(f'<text x="{f1(lx + 14)}" y="{ly}">target</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main


def link(from_file, to_path):
    """A Markdown link target from one file's directory, with forward slashes."""
    rel = os.path.relpath(to_path, os.path.dirname(os.path.abspath(from_file)))
    return rel.replace(os.sep, "/")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write emask_perf's JSON into README.md, docs/benchmarks.md and SVG charts.")
    ap.add_argument("json", metavar="RUN.json", help="output of emask_perf --full --json")
    ap.add_argument("--readme", help="file with the markers for the compact table")
    ap.add_argument("--benchmarks", help="file with the markers for the full tables")
    ap.add_argument("--img-dir", help="directory for perf_<group>.svg")
    ap.add_argument("--command", help="command that produced the JSON, quoted in the text")
    args = ap.parse_args(argv)
    command = args.command or f"build/bench/bench/emask_perf --full --json {args.json}"

    try:
        run = load_run(args.json)
    except InputError as e:
        print(f"bench_report.py: error: {e}", file=sys.stderr)
        return 2

    # Everything is computed and every target checked before the first write, so a missing
    # marker never leaves the docs half updated.
    writes = {}
    try:
        if args.readme:
            bench_link = link(args.readme, args.benchmarks) if args.benchmarks else None
            writes[args.readme] = splice(args.readme,
                                         readme_block(run, args.json, command, bench_link))
        if args.benchmarks:
            prefix = link(args.benchmarks, args.img_dir) + "/" if args.img_dir else "img/"
            writes[args.benchmarks] = splice(
                args.benchmarks, benchmarks_block(run, args.json, command, prefix))
    except TargetError as e:
        print(f"bench_report.py: error: {e}", file=sys.stderr)
        return 1
    if args.img_dir:
        for group, results in groups_of(run["results"]).items():
            writes[os.path.join(args.img_dir, svg_name(group))] = chart(group, results, run)
        os.makedirs(args.img_dir, exist_ok=True)

    if not writes:
        print("bench_report.py: JSON is valid; nothing to write without --readme, --benchmarks "
              "or --img-dir", file=sys.stderr)
    for path, text in writes.items():
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
