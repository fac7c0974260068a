#!/usr/bin/env bash
# Starts the whole StuffMart system locally.
#
#   scripts/run.sh                   build (web client + Rust, debug profile), then start
#   scripts/run.sh --no-build        start the already built binaries
#   scripts/run.sh --print-services  print the services that would be started, in order, and exit
#
# Every workspace member directory named ms-* that has src/main.rs is a service
# (ms-common and ms-testkit are libraries, so they are skipped). The backend
# services start first, ms-router last; the script then waits for
# http://127.0.0.1:$PORT/readyz. Ctrl-C, SIGTERM or any service exiting stops
# everything (SIGTERM, then SIGKILL after 10 s).
#
# Environment (a value already set is kept):
#   PORT=3000  DATA_DIR=./data  ORDER_HOLD_SECONDS=900  RUST_LOG=info
#   AMQP_URL (see scripts/ensure-rabbitmq.sh)  CARGO_TARGET_DIR (default target)
#   READY_TIMEOUT_SECONDS=60  STOP_TIMEOUT_SECONDS=10
#   AMQP_USERS=1: on a local broker, each service connects as its own AMQP user
#     (ms-user … ms-router) with the permissions of deploy/rabbitmq/definitions.json;
#     passwords are generated once and kept under $DATA_DIR/amqp/<user>/password, the
#     users set up with rabbitmqctl on every start (idempotent). AMQP_USERS=0, a
#     remote broker, or an AMQP_PREFIX (the e2e's: the permissions name the default
#     names): every service uses AMQP_URL as given.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
cd "$ROOT"

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

BUILD=1
PRINT_ONLY=0
for arg in "$@"; do
	case "$arg" in
	--no-build) BUILD=0 ;;
	--print-services) PRINT_ONLY=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument '${arg}' (try --help)" ;;
	esac
done

# --- Service discovery -------------------------------------------------------
SERVICES=()
discover_services() {
	local dir backends=() router="" restore_nullglob
	restore_nullglob="$(shopt -p nullglob || true)"
	shopt -s nullglob
	for dir in ms-*/; do
		dir="${dir%/}"
		[[ -f "${dir}/Cargo.toml" && -f "${dir}/src/main.rs" ]] || continue
		if [[ "$dir" == "ms-router" ]]; then
			router="$dir"
		else
			backends+=("$dir")
		fi
	done
	eval "$restore_nullglob"
	SERVICES=("${backends[@]}")
	if [[ -n "$router" ]]; then
		SERVICES+=("$router")
	fi
}

discover_services

if ((PRINT_ONLY)); then
	if ((${#SERVICES[@]} > 0)); then
		printf '%s\n' "${SERVICES[@]}"
	fi
	exit 0
fi

((${#SERVICES[@]} > 0)) || die "no services found (no ms-*/src/main.rs in ${ROOT})"
[[ "${SERVICES[-1]}" == "ms-router" ]] || die "ms-router/src/main.rs not found; the router is what serves http://127.0.0.1:\${PORT}"

# --- Environment ---------------------------------------------------------------
export PORT="${PORT:-3000}"
export DATA_DIR="${DATA_DIR:-./data}"
export ORDER_HOLD_SECONDS="${ORDER_HOLD_SECONDS:-900}"
# Where Stripe Connect sends sellers back after onboarding: this router's own address.
export PUBLIC_URL="${PUBLIC_URL:-http://127.0.0.1:${PORT}}"
export RUST_LOG="${RUST_LOG:-info}"
READY_TIMEOUT_SECONDS="${READY_TIMEOUT_SECONDS:-60}"
STOP_TIMEOUT_SECONDS="${STOP_TIMEOUT_SECONDS:-10}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
mkdir -p "$DATA_DIR"

# --- Broker ----------------------------------------------------------------------
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
bash "${SCRIPT_DIR}/ensure-rabbitmq.sh"
# PDF previews (page counts, first pages as images) need poppler-utils; without it the
# system runs and PDFs simply get no preview.
bash "${SCRIPT_DIR}/ensure-poppler.sh" || echo "run.sh: poppler-utils missing: PDFs get no preview" >&2

# --- AMQP users -------------------------------------------------------------------
# amqp://[user[:password]@]host[:port][/vhost] -> host[:port][/vhost]
AMQP_ADDRESS="${AMQP_URL#*://}"
AMQP_ADDRESS="${AMQP_ADDRESS##*@}"
AMQP_HOST="${AMQP_ADDRESS%%[:/?]*}"
SERVICE_USERS=0
setup_amqp_users() {
	local defs="${DATA_DIR}/amqp/rabbitmq/definitions.json" deadline
	PATH="${PATH}:/usr/sbin:/sbin:/usr/lib/rabbitmq/bin"
	command -v rabbitmqctl >/dev/null 2>&1 || {
		log "rabbitmqctl not found: every service connects with AMQP_URL"
		return 0
	}
	sh deploy/rabbitmq/render-definitions.sh deploy/rabbitmq/definitions.json "${DATA_DIR}/amqp" >/dev/null
	# Debian's rabbitmqctl runs as the rabbitmq user, which cannot read DATA_DIR: hand it a
	# copy it may read (its group only, where we may set that), removed right after.
	local copy_dir copy
	copy_dir="$(mktemp -d)"
	copy="${copy_dir}/definitions.json"
	cp "$defs" "$copy"
	chmod 0711 "$copy_dir"
	if chgrp rabbitmq "$copy" 2>/dev/null; then chmod 0640 "$copy"; else chmod 0644 "$copy"; fi
	if ! rabbitmqctl -q import_definitions "$copy" >/dev/null; then
		rm -rf "$copy_dir"
		die "rabbitmqctl import_definitions failed (run as a user allowed to use rabbitmqctl, or AMQP_USERS=0)"
	fi
	rm -rf "$copy_dir"
	# The import runs asynchronously: wait until the last user can log in.
	deadline=$((SECONDS + 30))
	until rabbitmqctl -q authenticate_user ms-router "$(cat "${DATA_DIR}/amqp/ms-router/password")" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "the AMQP users did not appear within 30 s"
		sleep 0.5
	done
	SERVICE_USERS=1
	log "AMQP users set up (passwords under ${DATA_DIR}/amqp)"
}
if [[ -n "${AMQP_PREFIX:-}" ]]; then
	log "AMQP_PREFIX is set: every service connects with AMQP_URL (the per-service permissions name unprefixed queues)"
elif [[ "${AMQP_USERS:-1}" == "1" ]]; then
	case "$AMQP_HOST" in
	127.0.0.1 | localhost | "[") setup_amqp_users ;;
	*) log "broker ${AMQP_HOST} is not local: every service connects with AMQP_URL" ;;
	esac
fi

# --- Build -----------------------------------------------------------------------
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

if ((BUILD)); then
	if [[ -f web-client/package.json ]]; then
		if command -v npm >/dev/null 2>&1; then
			log "building the web client"
			(cd web-client && npm_install_if_needed && npm run build)
		else
			log "WARNING: npm not found; skipping the web client build"
		fi
	fi
	log "building the services (cargo build --workspace --bins, debug profile)"
	cargo build --workspace --bins
fi

for name in "${SERVICES[@]}"; do
	[[ -x "${TARGET_DIR}/debug/${name}" ]] ||
		die "${TARGET_DIR}/debug/${name} is missing; run scripts/run.sh without --no-build"
done

# --- Process management ---------------------------------------------------------
PIDS=()
NAMES=()
STOPPING=0

alive_pids() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			printf '%s\n' "$pid"
		fi
	done
}

stop_all() {
	((STOPPING)) && return 0
	STOPPING=1
	trap '' INT TERM
	local alive deadline pid
	mapfile -t alive < <(alive_pids)
	if ((${#alive[@]} > 0)); then
		log "stopping ${#alive[@]} service(s)..."
		kill -TERM "${alive[@]}" 2>/dev/null || true
		deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
		while ((SECONDS < deadline)); do
			mapfile -t alive < <(alive_pids)
			((${#alive[@]} == 0)) && break
			sleep 0.2
		done
		mapfile -t alive < <(alive_pids)
		if ((${#alive[@]} > 0)); then
			log "still running after ${STOP_TIMEOUT_SECONDS}s; sending SIGKILL to ${alive[*]}"
			kill -KILL "${alive[@]}" 2>/dev/null || true
		fi
	fi
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	log "stopped"
}

# Name of the first service that is no longer running, or nothing.
first_dead_service() {
	local i
	for i in "${!PIDS[@]}"; do
		if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
			printf '%s\n' "${NAMES[$i]}"
			return 0
		fi
	done
}

trap 'log "interrupted"; stop_all; exit 130' INT
trap 'log "terminated"; stop_all; exit 143' TERM
trap 'stop_all' EXIT

start_service() {
	local name="$1"
	log "starting ${name}"
	# The process substitution runs sed for this service only; $! is the
	# service itself, so signals go straight to it.
	if ((SERVICE_USERS)) && [[ -f "${DATA_DIR}/amqp/${name}/password" ]]; then
		AMQP_URL="amqp://${name}@${AMQP_ADDRESS}" AMQP_PASSWORD_FILE="${DATA_DIR}/amqp/${name}/password" \
			"${TARGET_DIR}/debug/${name}" > >(sed -u "s/^/[${name}] /") 2>&1 &
	else
		"${TARGET_DIR}/debug/${name}" > >(sed -u "s/^/[${name}] /") 2>&1 &
	fi
	PIDS+=("$!")
	NAMES+=("$name")
}

for name in "${SERVICES[@]}"; do
	start_service "$name"
done

# --- Readiness --------------------------------------------------------------------
READY_URL="http://127.0.0.1:${PORT}/readyz"
log "waiting up to ${READY_TIMEOUT_SECONDS}s for ${READY_URL}"
deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
code=""
while :; do
	dead="$(first_dead_service)"
	if [[ -n "$dead" ]]; then
		log "ERROR: ${dead} exited during startup"
		exit 1
	fi
	code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$READY_URL" || true)"
	[[ "$code" == "200" ]] && break
	if ((SECONDS >= deadline)); then
		log "ERROR: ${READY_URL} did not return 200 within ${READY_TIMEOUT_SECONDS}s (last status: ${code:-none})"
		exit 1
	fi
	sleep 0.5
done

echo "StuffMart is up at http://127.0.0.1:${PORT}"

# --- Supervise ---------------------------------------------------------------------
# wait -n returns when any service exits (or a trapped signal arrives, in which
# case the trap stops everything and exits).
status=0
wait -n "${PIDS[@]}" || status=$?
dead="$(first_dead_service)"
log "${dead:-a service} exited (status ${status}); stopping the system"
stop_all
exit 1
