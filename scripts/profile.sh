#!/usr/bin/env bash
# Flame graphs of the router and ms-stuff while they relay stuff:get (docs/benchmarks.md,
# "Profiles"): runs the release bench's rtt scenario and samples both processes with perf
# in the middle of its measured window, then folds the stacks with inferno into SVGs.
#
#   scripts/profile.sh                      # official client, 50 clients x 4 in flight
#   CLIENT=rust POINT=8x8 scripts/profile.sh
#   OUT=/tmp/flames scripts/profile.sh      # where the SVGs go (default docs/flamegraphs)
#   FOLDED=/tmp/folded scripts/profile.sh   # keep the folded stacks too
#
# Needs perf (Debian's linux-perf) and inferno (`cargo install inferno`); builds nothing:
# run scripts/bench.sh once first (it builds the release binaries and bench/node).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLIENT="${CLIENT:-official}"
POINT="${POINT:-50x4}"
OUT="${OUT:-docs/flamegraphs}"
SECONDS_SAMPLED="${SECONDS_SAMPLED:-10}"
TAG="${TAG:-rtt-${CLIENT}-${POINT}}"

for tool in perf inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "profile.sh: $tool is missing" >&2; exit 1; }
done
[ -x target/release/bench ] || { echo "profile.sh: run scripts/bench.sh first" >&2; exit 1; }
mkdir -p "$OUT"
WORK="$(mktemp -d -t stuffmart-profile.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# Warm-up long enough to find the processes, a window long enough to sample in.
# BIN_DIR=DIR profiles other builds of the services (e.g. an older commit's, as in
# docs/benchmarks.md's before/after); the bench binary stays this checkout's.
BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
target/release/bench --bin-dir "$BIN_DIR" --scenarios rtt --clients "$CLIENT" --rtt "$POINT" \
  --warmup 5 --duration $((SECONDS_SAMPLED + 10)) --out "$WORK/results" >"$WORK/bench.log" 2>&1 &
BENCH=$!

pid_of() { pgrep -n -f "^$BIN_DIR/$1\$" || true; }
ROUTER="" STUFF=""
for _ in $(seq 1 300); do
  ROUTER="$(pid_of ms-router)" STUFF="$(pid_of ms-stuff)"
  [ -n "$ROUTER" ] && [ -n "$STUFF" ] && break
  kill -0 "$BENCH" 2>/dev/null || { cat "$WORK/bench.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ROUTER" ] && [ -n "$STUFF" ] || { echo "profile.sh: services did not start" >&2; exit 1; }
# Into the measured window: connecting and the warm-up come first.
until grep -q "rtt (" "$WORK/bench.log"; do sleep 0.2; done
sleep 8

# DWARF unwinding: release builds keep no frame pointers.
PERFS=()
for name in router stuff; do
  pid=$ROUTER; [ "$name" = stuff ] && pid=$STUFF
  perf record -F 499 --call-graph dwarf,16384 -p "$pid" -o "$WORK/$name.data" \
    -- sleep "$SECONDS_SAMPLED" >"$WORK/perf-$name.log" 2>&1 &
  PERFS+=("$!")
done
wait "${PERFS[@]}" || true
wait "$BENCH" || { cat "$WORK/bench.log" >&2; exit 1; }

for name in router stuff; do
  title="ms-$name, stuff:get relay, $CLIENT client $POINT ($(git rev-parse --short HEAD))"
  perf script -i "$WORK/$name.data" 2>/dev/null | inferno-collapse-perf >"$WORK/$name.folded"
  inferno-flamegraph --minwidth 0.2 --title "$title" <"$WORK/$name.folded" >"$OUT/$TAG-$name.svg"
  # FOLDED=DIR keeps the folded stacks (for inferno-diff-folded or a quick grep).
  [ -n "${FOLDED:-}" ] && mkdir -p "$FOLDED" && cp "$WORK/$name.folded" "$FOLDED/$TAG-$name.folded"
  echo "profile.sh: $OUT/$TAG-$name.svg ($(wc -l <"$WORK/$name.folded") distinct stacks)"
done
grep -E "acks/s|CPU per request" "$WORK/bench.log" || true
