#!/usr/bin/env python3
"""cohort-bench allreduce --json lines to a markdown table and an SVG plot of busbw against size.

    plot_busbw.py JSONL OUTDIR [--nodes N]

Writes OUTDIR/allreduce.md (size, count, time_us, algbw, busbw, baseline busbw, ratio, check) and
OUTDIR/busbw.svg (Cohort's busbw and the baseline's against message size, log2 x axis). Only the
standard library: it runs wherever python3 does.
"""

import argparse
import json
import math
import os
import sys
from xml.sax.saxutils import escape

FIELDS = ("bytes", "count", "time_us", "algbw_gbps", "busbw_gbps", "baseline", "baseline_busbw_gbps",
          "ratio", "check", "ranks", "dtype", "op")


def fail(message):
    print(f"plot_busbw.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_rows(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"{path}:{number}: not JSON ({e.msg}): {line[:80]}")
        if not isinstance(row, dict):
            fail(f"{path}:{number}: expected a JSON object, got {line[:80]}")
        missing = [k for k in FIELDS if k not in row]
        if missing:
            fail(f"{path}:{number}: missing {', '.join(missing)}; is it `cohort-bench allreduce --json` output?")
        rows.append(row)
    if not rows:
        fail(f"{path} holds no results: did rank 0 of the job run `cohort-bench allreduce --json`?")
    return sorted(rows, key=lambda r: r["bytes"])


def size_label(n, compact=False):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}" if compact else f"{n >> shift} {unit}iB"
    return f"{n}" if compact else f"{n} B"


def write_table(rows, nodes, path):
    r0 = rows[0]
    base = r0["baseline"] != "none"
    out = [f"allreduce {r0['dtype']} {r0['op']}, {r0['ranks']} ranks on {nodes} nodes, median of 3 blocks "
           f"(busbw = algbw x 2(n-1)/n; ratio = baseline time / Cohort time)", "",
           "| size | count | time_us | algbw (GB/s) | busbw (GB/s) | baseline busbw (GB/s) | ratio | check |",
           "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {size_label(r['bytes'])} | {r['count']} | {r['time_us']:.2f} | {r['algbw_gbps']:.4f} | "
                   f"{r['busbw_gbps']:.4f} | {fmt(r['baseline_busbw_gbps'], 4, base)} | "
                   f"{fmt(r['ratio'], 3, base)} | {r['check']} |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def fmt(value, digits, present):
    return f"{value:.{digits}f}" if present else "-"


def nice_step(span, ticks=5):
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def write_svg(rows, nodes, path):
    width, height = 760, 460
    left, right, top, bottom = 80, 30, 56, 64
    pw, ph = width - left - right, height - top - bottom
    base = rows[0]["baseline"] != "none"
    xs = [math.log2(r["bytes"]) for r in rows]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 1, x1 + 1
    ys = [r["busbw_gbps"] for r in rows] + ([r["baseline_busbw_gbps"] for r in rows] if base else [])
    top_value = max(ys) if max(ys) > 0 else 1.0
    step = nice_step(top_value)
    y1 = step * math.ceil(top_value * 1.05 / step)

    def px(x):
        return left + (x - x0) / (x1 - x0) * pw

    def py(y):
        return top + ph - y / y1 * ph

    r0 = rows[0]
    title = (f"allreduce {r0['dtype']} {r0['op']} busbw against message size: "
             f"{nodes} node{'s' if nodes != 1 else ''}, {r0['ranks']} rank{'s' if r0['ranks'] != 1 else ''}")
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.1f}" y="28" text-anchor="middle" font-size="15">{escape(title)}</text>']
    # Grid and y ticks.
    ticks = int(round(y1 / step))
    for i in range(ticks + 1):
        v = i * step
        y = py(v)
        svg.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    # x ticks: every measured size, or every other one when they would crowd.
    every = 1 if len(rows) <= 12 else 2
    for i, r in enumerate(rows):
        if i % every:
            continue
        x = px(xs[i])
        svg.append(f'<line x1="{x:.1f}" y1="{top + ph}" x2="{x:.1f}" y2="{top + ph + 5}" stroke="black"/>')
        svg.append(f'<text x="{x:.1f}" y="{top + ph + 20}" text-anchor="middle">{size_label(r["bytes"], True)}</text>')
    # Axes and their labels.
    svg.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>')
    svg.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>')
    svg.append(f'<text x="{left + pw / 2:.1f}" y="{height - 18}" text-anchor="middle">'
               f'message size (bytes, log2 scale)</text>')
    svg.append(f'<text x="22" y="{top + ph / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 22 {top + ph / 2:.1f})">busbw (GB/s)</text>')
    # The lines, each with its points and a legend entry.
    series = [("Cohort allreduce", "busbw_gbps", "#1f77b4", "")]
    if base:
        series.append((f"baseline: {escape(r0['baseline'])} "
                       f"({'MPI_Allreduce' if r0['dtype'] in ('fp32', 'fp64') else 'MPI user op'})",
                       "baseline_busbw_gbps", "#ff7f0e", ' stroke-dasharray="6 4"'))
    for n, (label, key, colour, dash) in enumerate(series):
        points = " ".join(f"{px(x):.1f},{py(r[key]):.1f}" for x, r in zip(xs, rows))
        svg.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{points}"/>')
        for x, r in zip(xs, rows):
            svg.append(f'<circle cx="{px(x):.1f}" cy="{py(r[key]):.1f}" r="3" fill="{colour}"/>')
        ly = top + 14 + 18 * n
        svg.append(f'<line x1="{left + 14}" y1="{ly}" x2="{left + 44}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')
        svg.append(f'<text x="{left + 50}" y="{ly + 4}">{label}</text>')
    svg.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(svg) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", help="cohort-bench allreduce --json output (rank 0's)")
    parser.add_argument("outdir", help="where allreduce.md and busbw.svg go")
    parser.add_argument("--nodes", type=int, help="nodes the job ran on, for the title (default: its ranks)")
    args = parser.parse_args()
    rows = read_rows(args.jsonl)
    nodes = args.nodes or rows[0]["ranks"]
    os.makedirs(args.outdir, exist_ok=True)
    write_table(rows, nodes, os.path.join(args.outdir, "allreduce.md"))
    write_svg(rows, nodes, os.path.join(args.outdir, "busbw.svg"))


if __name__ == "__main__":
    main()
