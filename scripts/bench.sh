#!/usr/bin/env bash
# Runs StuffMart's benchmarks (docs/benchmarks.md) and prints the results:
#   1. makes sure RabbitMQ is running (scripts/ensure-rabbitmq.sh);
#   2. builds the router, the four services and the load generator in release;
#   3. installs bench/node's official socket.io-client (npm ci) if it is missing;
#   4. runs target/release/bench with the default sizes, rtt, fan-out and idle with both
#      load generators, the lean Rust client and the official socket.io-client (ceiling,
#      rtt 50x4, 8x8 and 1x1,
#      fan-out to 1,000 and 10,000 viewers, a 200-user race, 10,000 and 20,000 idle
#      connections, 50 MiB uploads and downloads with 20 uploads at once, one socket
#      flooding while a victim measures its latency, with the socket allowances on and
#      off, 200 concurrent sign-ups from one client with ms-user's peak RSS, and search:
#      100,000 stuff seeded, then stuff:list with q and with course + sort), which starts
#      and stops the services itself;
#   5. prints every scenario's JSON line and where the JSON and PNG were written
#      (bench/results/, git-ignored).
# Extra arguments go to the bench binary, e.g. `scripts/bench.sh --quick` or
# `scripts/bench.sh --scenarios rtt,ceiling --duration 30` (see `--help`).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
cd "$ROOT"

log() { printf 'bench.sh: %s\n' "$*" >&2; }

"${SCRIPT_DIR}/ensure-rabbitmq.sh"

log "building release binaries (cold: ~7 min on 2 cores)"
cargo build --release -p ms-router -p ms-user -p ms-stuff -p ms-order -p ms-payment -p bench

# The second load generator: the official socket.io-client on Node.js (bench/node).
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if [ ! -d bench/node/node_modules/socket.io-client ]; then
    log "installing the official socket.io-client for bench/node (npm ci)"
    npm ci --prefix bench/node --no-audit --no-fund
  fi
else
  log "node and npm are missing: run with --clients rust, or install Node.js 20+"
fi

# 10,000+ sockets on each side: raise the open-file limit where the shell allows it
# (the bench raises it again itself, and the services inherit it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

LOG_FILE="$(mktemp -t stuffmart-bench.XXXXXX.log)"
log "running target/release/bench $* (full output also in ${LOG_FILE})"
status=0
# pipefail: the pipeline fails when the bench does.
target/release/bench --out bench/results "$@" 2>&1 | tee "$LOG_FILE" || status=$?

echo
echo "=== JSON lines ==="
grep '^{"scenario"' "$LOG_FILE" || true
rm -f "$LOG_FILE"
exit "$status"
