#!/usr/bin/env bash
# Installs Cohort from BUILD into a temporary prefix, builds tests/consumer against it with
# find_package(cohort), and runs it both alone and under the installed `cohort run`.
set -euo pipefail
build=$1
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/tests/consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
out=$("$work/build/consumer")
[ "$out" = "sum of ranks = 0" ] || { echo "standalone consumer printed: $out"; exit 1; }
out=$("$work/prefix/bin/cohort" run -n 3 "$work/build/consumer")
echo "$out"
grep -q '^\[rank 0\] sum of ranks = 3$' <<<"$out" || { echo "consumer under the installed cohort run failed"; exit 1; }
echo "install test: find_package(cohort) consumer built and ran"
