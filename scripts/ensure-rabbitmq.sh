#!/usr/bin/env bash
# Makes sure the RabbitMQ broker named by AMQP_URL accepts connections.
#
# Idempotent: when the port already answers (TCP connect plus the AMQP protocol
# header, see broker_ready), exits 0 at once. Otherwise, when
# the broker is local (127.0.0.1 / localhost / ::1), installs RabbitMQ with
# apt-get if it is missing, starts it, and waits until it is ready.
#
# Environment:
#   AMQP_URL                default amqp://guest:guest@127.0.0.1:5672/%2f
#   RABBITMQ_WAIT_SECONDS   how long to wait for the broker (default 60)
set -euo pipefail

AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
WAIT_SECONDS="${RABBITMQ_WAIT_SECONDS:-60}"

# rabbitmq-server and rabbitmqctl live in /usr/sbin on Debian, which is not on
# every user's PATH.
PATH="${PATH}:/usr/sbin:/sbin:/usr/lib/rabbitmq/bin"
export PATH

log() { printf 'ensure-rabbitmq: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# --- Parse host and port out of AMQP_URL -----------------------------------
# amqp[s]://[user[:password]@]host[:port][/vhost][?query]
parse_url() {
	local url="$1" rest hostport
	case "$url" in
	amqp://*) AMQP_SCHEME=amqp ;;
	amqps://*) AMQP_SCHEME=amqps ;;
	*) die "AMQP_URL must start with amqp:// or amqps:// (got '${url}')" ;;
	esac
	rest="${url#*://}"
	hostport="${rest%%/*}"        # drop /vhost
	hostport="${hostport%%\?*}"   # drop ?query (when there is no vhost)
	hostport="${hostport##*@}"    # drop user:password@
	if [[ "$hostport" == \[* ]]; then # [ipv6]:port
		AMQP_HOST="${hostport#\[}"
		AMQP_HOST="${AMQP_HOST%%\]*}"
		AMQP_PORT="${hostport#*\]}"
		AMQP_PORT="${AMQP_PORT#:}"
	elif [[ "$hostport" == *:* ]]; then
		AMQP_HOST="${hostport%:*}"
		AMQP_PORT="${hostport##*:}"
	else
		AMQP_HOST="$hostport"
		AMQP_PORT=""
	fi
	if [[ -z "$AMQP_PORT" ]]; then
		if [[ "$AMQP_SCHEME" == amqps ]]; then AMQP_PORT=5671; else AMQP_PORT=5672; fi
	fi
	[[ -n "$AMQP_HOST" ]] || AMQP_HOST=127.0.0.1
	[[ "$AMQP_PORT" =~ ^[0-9]+$ ]] || die "cannot parse a port number from AMQP_URL (got '${AMQP_PORT}')"
}

# Succeeds when host:port accepts a TCP connection and, for amqp://, answers
# the AMQP 0-9-1 protocol header with a frame (Connection.Start, frame type 1).
# The handshake matters where a proxy accepts every outbound TCP connection;
# a bare connect would then report a broker that is not there.
broker_ready() {
	if [[ "$AMQP_SCHEME" == amqps ]]; then
		# shellcheck disable=SC2016 # $1 and $2 expand in the inner bash.
		timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$AMQP_HOST" "$AMQP_PORT" 2>/dev/null
		return
	fi
	# shellcheck disable=SC2016 # $1 and $2 expand in the inner bash.
	LC_ALL=C timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "AMQP\x00\x00\x09\x01" >&3 || exit 1
		IFS= read -r -t 2 -N 1 -u 3 byte || exit 1
		printf -v frame_type "\x01"
		[[ "$byte" == "$frame_type" ]]
	' _ "$AMQP_HOST" "$AMQP_PORT" 2>/dev/null
}

is_local() {
	case "$AMQP_HOST" in
	127.* | localhost | ::1 | 0.0.0.0) return 0 ;;
	*) return 1 ;;
	esac
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

install_rabbitmq() {
	command -v apt-get >/dev/null 2>&1 ||
		die "rabbitmq-server is not installed and apt-get is not available; install RabbitMQ or set AMQP_URL to a running broker"
	log "rabbitmq-server not found; installing it with apt-get (this can take a minute)..."
	as_root apt-get update ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server ||
		die "apt-get install rabbitmq-server failed"
	command -v rabbitmq-server >/dev/null 2>&1 ||
		die "rabbitmq-server is still not on PATH after installing it"
}

# Succeeds when a local RabbitMQ node is up (perhaps still booting).
node_running() {
	command -v rabbitmq-diagnostics >/dev/null 2>&1 || return 1
	timeout 20 rabbitmq-diagnostics -q ping >/dev/null 2>&1
}

start_rabbitmq() {
	log "starting RabbitMQ (rabbitmq-server -detached)..."
	if as_root rabbitmq-server -detached >&2; then
		return 0
	fi
	log "rabbitmq-server -detached failed; trying 'service rabbitmq-server start'..."
	if command -v service >/dev/null 2>&1 && as_root service rabbitmq-server start >&2; then
		return 0
	fi
	die "could not start RabbitMQ (tried 'rabbitmq-server -detached' and 'service rabbitmq-server start'); see /var/log/rabbitmq/"
}

wait_for_port() {
	local deadline=$((SECONDS + WAIT_SECONDS))
	log "waiting up to ${WAIT_SECONDS}s for AMQP on ${AMQP_HOST}:${AMQP_PORT}..."
	until broker_ready; do
		if ((SECONDS >= deadline)); then
			die "RabbitMQ did not open ${AMQP_HOST}:${AMQP_PORT} within ${WAIT_SECONDS}s; see /var/log/rabbitmq/"
		fi
		sleep 0.5
	done
}

wait_for_startup() {
	command -v rabbitmqctl >/dev/null 2>&1 || return 0
	log "waiting for 'rabbitmqctl await_startup'..."
	if ! timeout "$((WAIT_SECONDS + 5))" rabbitmqctl -t "$WAIT_SECONDS" await_startup >/dev/null 2>&1; then
		die "RabbitMQ port is open but 'rabbitmqctl await_startup' did not succeed within ${WAIT_SECONDS}s"
	fi
}

main() {
	parse_url "$AMQP_URL"

	if broker_ready; then
		exit 0
	fi

	if ! is_local; then
		die "RabbitMQ at ${AMQP_HOST}:${AMQP_PORT} (from AMQP_URL) does not answer, and it is not local, so it cannot be started from here"
	fi

	log "no AMQP broker answers on ${AMQP_HOST}:${AMQP_PORT}"
	if ! command -v rabbitmq-server >/dev/null 2>&1; then
		install_rabbitmq
	elif node_running; then
		# Already running (or booting): let it finish; starting another node
		# cannot help.
		log "a local RabbitMQ node is already running; waiting for it to finish starting"
		wait_for_startup
		broker_ready ||
			die "the local RabbitMQ node is running, but ${AMQP_HOST}:${AMQP_PORT} does not answer AMQP; check AMQP_URL against the broker's listeners (rabbitmq-diagnostics listeners)"
		log "RabbitMQ is ready at ${AMQP_HOST}:${AMQP_PORT}"
		exit 0
	fi

	# Debian's package may already have started the service while installing.
	if ! broker_ready; then
		start_rabbitmq
		wait_for_port
	fi
	wait_for_startup
	log "RabbitMQ is ready at ${AMQP_HOST}:${AMQP_PORT}"
}

main "$@"
