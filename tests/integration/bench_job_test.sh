#!/usr/bin/env bash
# examples/bench_job/run end to end: a 2-node allreduce benchmark job on a cluster of its own,
# then checks of what it leaves: allreduce.jsonl (one JSON object per size), allreduce.md (the
# table) and busbw.svg (well-formed, two lines). Nothing it starts may outlive it.
#
#   tests/integration/bench_job_test.sh BUILD_DIR
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cohort-bench-job-test.XXXXXX")
cleanup() {
  local rc=$?
  # The run script stops what it started when it ends, even by a signal (timeout passes one on to
  # its whole process group); `cohort down` here is the backstop for a run that was SIGKILLed.
  if [ -n "${runner_pid:-}" ]; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  timeout 60 "$build/bin/cohort" down --state-dir "$tmp/state" >/dev/null 2>&1 || true
  local left
  left=$(pgrep -f -- "$tmp" || true)
  if [ -n "$left" ]; then
    echo "FAIL: processes of $tmp outlived the test: $left" >&2
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null || true
    rc=1
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

out=$tmp/out
echo "== examples/bench_job/run --nodes 2 (build $build)"
# In the background, so that a signal to this test reaches the trap at once, which passes it on.
COHORT_MANAGER='' COHORT_BUILD_DIR=$build timeout 240 "$repo/examples/bench_job/run" --nodes 2 \
  --state-dir "$tmp/state" --out "$out" --min-bytes 8K --max-bytes 256K &
runner_pid=$!
status=0
wait "$runner_pid" || status=$?
runner_pid=
[ "$status" -eq 0 ] || fail "examples/bench_job/run exited with status $status (124: it ran past 240 s)"

for f in allreduce.jsonl allreduce.md busbw.svg; do
  [ -s "$out/$f" ] || fail "$out/$f is missing or empty"
done

# 8K, 32K, 128K: -f 4 from 8 KiB while the size stays <= 256 KiB.
python3 - "$out/allreduce.jsonl" <<'EOF' || fail "allreduce.jsonl is not what cohort-bench allreduce --json writes"
import json, sys
path = sys.argv[1]
lines = [l for l in open(path) if l.strip()]
rows = [json.loads(l) for l in lines]
want = [8 << 10, 32 << 10, 128 << 10]
got = [r.get("bytes") for r in rows]
if got != want:
    sys.exit(f"{path}: sizes {got}, expected {want} (one JSON object per size)")
for r in rows:
    for k in ("busbw_gbps", "baseline_busbw_gbps", "check"):
        if k not in r:
            sys.exit(f"{path}: a row has no {k}: {r}")
    if r["check"] != "ok":
        sys.exit(f"{path}: check is {r['check']!r} at {r['bytes']} bytes")
    if not r["busbw_gbps"] > 0:
        sys.exit(f"{path}: busbw_gbps is {r['busbw_gbps']} at {r['bytes']} bytes")
    if r["ranks"] != 2:
        sys.exit(f"{path}: {r['ranks']} ranks, expected 2 (one per node)")
EOF

header='| size | count | time_us | algbw (GB/s) | busbw (GB/s) | baseline busbw (GB/s) | ratio | check |'
grep -qxF -- "$header" "$out/allreduce.md" || fail "allreduce.md has no table header: $(cat "$out/allreduce.md")"
for size in '8 KiB' '32 KiB' '128 KiB'; do
  grep -q "^| $size | .* | ok |\$" "$out/allreduce.md" || fail "allreduce.md has no row for $size: $(cat "$out/allreduce.md")"
done

python3 - "$out/busbw.svg" <<'EOF' || fail "busbw.svg is not a well-formed SVG with two lines"
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
lines = doc.getElementsByTagName("polyline") + doc.getElementsByTagName("path")
if doc.documentElement.tagName != "svg":
    sys.exit(f"the root element is {doc.documentElement.tagName}, not svg")
if len(lines) != 2:
    sys.exit(f"{len(lines)} polylines/paths, expected 2 (Cohort and the MPI baseline)")
for l in lines:
    if len((l.getAttribute("points") or l.getAttribute("d")).split()) != 3:
        sys.exit(f"a line without 3 points: {l.toxml()[:200]}")
EOF

[ ! -e "$tmp/state" ] || fail "the run script left its state directory $tmp/state"
echo "PASS: bench_job_example"
