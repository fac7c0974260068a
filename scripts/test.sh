#!/usr/bin/env bash
# Runs every test of the project:
#   1. makes sure RabbitMQ is running (scripts/ensure-rabbitmq.sh) and that moto's S3
#      server (PyPI `moto[server]`) is installed: the delivery tests start one per test
#      to check the S3 object-store path against a real S3-compatible server; and that
#      poppler-utils is installed (scripts/ensure-poppler.sh): PDF previews are rendered
#      with it;
#   2. the Rust tests: the workspace's test and binary build, then
#      cargo nextest run --workspace --no-fail-fast (or cargo test when
#      cargo-nextest is not installed), debug profile, including the reliability
#      suite (ms-chaos); extra arguments are passed to that command;
#   3. the web client's tests (when web-client/package.json exists).
# Every part runs even when an earlier one failed; the exit status is non-zero
# when any part failed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
cd "$ROOT"

log() { printf 'test.sh: %s\n' "$*" >&2; }

RESULTS=()
FAILED=0

# Runs one part, records PASS/FAIL, never stops the script.
step() {
	local label="$1" status=0
	shift
	log "=== ${label} ==="
	"$@" || status=$?
	if ((status == 0)); then
		RESULTS+=("PASS  ${label}")
	else
		RESULTS+=("FAIL  ${label} (exit ${status})")
		FAILED=1
	fi
}

rust_tests() {
	# The reliability suite (ms-chaos) runs the service binaries as processes: build them
	# first, with the same flags as the test build so nothing is compiled twice.
	cargo build --workspace --tests --bins
	if cargo nextest --version >/dev/null 2>&1; then
		cargo nextest run --workspace --no-fail-fast "$@"
	else
		log "cargo-nextest not installed; using cargo test"
		cargo test --workspace --no-fail-fast "$@"
	fi
}

# npm ci only when node_modules is missing or package-lock.json changed since
# the last install (npm writes node_modules/.package-lock.json on install).
npm_install_if_needed() {
	local marker=node_modules/.package-lock.json
	[[ -f "$marker" ]] || marker=node_modules
	if [[ ! -f package-lock.json ]]; then
		log "web-client: no package-lock.json; running npm install"
		npm install
	elif [[ ! -d node_modules || package-lock.json -nt "$marker" ]]; then
		log "web-client: running npm ci"
		npm ci
	fi
}

in_web_client() {
	(cd web-client && "$@")
}

web_unit_tests() {
	# CI=true keeps test runners (vitest, jest) from starting in watch mode.
	in_web_client env CI="${CI:-true}" npm test
}

web_e2e_tests() {
	# The e2e step is defined by the web-client package: its "e2e" script in
	# web-client/package.json decides what runs (and how the system under test
	# is started, e.g. with scripts/run.sh --no-build).
	in_web_client env CI="${CI:-true}" npm run e2e
}

# The S3-compatible server the delivery tests start (one per test, on a free port).
ensure_s3_server() {
	if python3 -c 'import moto.server' >/dev/null 2>&1; then
		return 0
	fi
	log "installing moto[server] (a real S3-compatible server for the S3 tests)"
	python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
}

step "RabbitMQ" bash "${SCRIPT_DIR}/ensure-rabbitmq.sh"
step "S3 test server" ensure_s3_server
step "PDF renderer (poppler-utils)" bash "${SCRIPT_DIR}/ensure-poppler.sh"
step "Rust tests" rust_tests "$@"

if [[ -f web-client/package.json ]]; then
	if command -v npm >/dev/null 2>&1; then
		step "web-client: npm install" in_web_client npm_install_if_needed
		step "web-client: npm test" web_unit_tests
		if [[ -d web-client/e2e ]]; then
			step "web-client: npm run e2e" web_e2e_tests
		fi
	else
		log "npm not found, but web-client/package.json exists"
		RESULTS+=("FAIL  web-client (npm not found)")
		FAILED=1
	fi
fi

log "=== Summary ==="
for line in "${RESULTS[@]}"; do
	log "$line"
done
if ((FAILED)); then
	log "some tests FAILED"
	exit 1
fi
log "all tests passed"
