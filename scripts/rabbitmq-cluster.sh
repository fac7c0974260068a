#!/usr/bin/env bash
# A RabbitMQ cluster of three nodes on this machine, beside the usual broker: each node
# has its own node name, AMQP and distribution ports, data and log directories, and no
# plugins; they share an Erlang cookie kept in DIR. For trying StuffMart on a cluster and
# for the cluster chaos test (ms-chaos, `cluster::`).
#
#   scripts/rabbitmq-cluster.sh up DIR PORT   start nodes on AMQP ports PORT, PORT+1, PORT+2
#                                             (distribution ports PORT+10…), join them, and
#                                             print the AMQP_URL listing all three
#   scripts/rabbitmq-cluster.sh kill DIR N    kill -9 node N (1-3), as a crashed machine
#   scripts/rabbitmq-cluster.sh start DIR N   start node N again (it rejoins the cluster)
#   scripts/rabbitmq-cluster.sh ctl DIR N …   rabbitmqctl against node N (e.g. list_queues
#                                             name leader members)
#   scripts/rabbitmq-cluster.sh down DIR      stop every node and delete DIR
#
# Example: AMQP_URL="$(scripts/rabbitmq-cluster.sh up /tmp/smq 5701)" scripts/run.sh
set -euo pipefail

PATH="${PATH}:/usr/sbin:/sbin"
# The scripts behind Debian's wrappers: the wrappers switch to the rabbitmq user, which
# could not write to DIR.
RMQ_BIN=/usr/lib/rabbitmq/bin
NODES=(1 2 3)

log() { printf 'rabbitmq-cluster: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

[[ -x "${RMQ_BIN}/rabbitmq-server" ]] ||
	die "RabbitMQ is not installed (scripts/ensure-rabbitmq.sh installs it)"

cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 up DIR PORT | kill DIR N | start DIR N | ctl DIR N ARGS… | down DIR"

node_name() { printf 'smq%s-%s@localhost' "$(cat "${dir}/port")" "$1"; }

# Runs a RabbitMQ command line tool against node N with the cluster's cookie.
node_env() {
	local n="$1" port
	port="$(cat "${dir}/port")"
	export HOME="${dir}"
	export RABBITMQ_NODENAME
	RABBITMQ_NODENAME="$(node_name "$n")"
	export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
	export RABBITMQ_NODE_PORT=$((port + n - 1))
	export RABBITMQ_DIST_PORT=$((port + 10 + n - 1))
	export RABBITMQ_MNESIA_BASE="${dir}/node${n}/mnesia"
	export RABBITMQ_LOG_BASE="${dir}/node${n}/log"
	export RABBITMQ_PID_FILE="${dir}/node${n}/pid"
	export RABBITMQ_ENABLED_PLUGINS_FILE="${dir}/enabled_plugins"
	export RABBITMQ_CONFIG_FILE="${dir}/rabbitmq.conf"
	export RABBITMQ_CONF_ENV_FILE="${dir}/rabbitmq-env.conf"
	export RABBITMQ_ADVANCED_CONFIG_FILE="${dir}/advanced.config"
	export ERL_EPMD_ADDRESS=127.0.0.1
}

ctl() {
	local n="$1"
	shift
	(node_env "$n" && "${RMQ_BIN}/rabbitmqctl" -n "$(node_name "$n")" "$@")
}

start_node() {
	local n="$1"
	mkdir -p "${dir}/node${n}/mnesia" "${dir}/node${n}/log"
	# Every descriptor redirected: a caller reading this script's output gets its EOF.
	(node_env "$n" && exec "${RMQ_BIN}/rabbitmq-server") \
		</dev/null >"${dir}/node${n}/log/console.log" 2>&1 &
	# Wait for the Erlang VM, then for the app (up to a minute each).
	local i
	for i in $(seq 1 120); do
		if [[ -s "${dir}/node${n}/pid" ]] && ctl "$n" -q status >/dev/null 2>&1; then
			break
		fi
		sleep 0.5
	done
	ctl "$n" -q await_startup --timeout 60 >/dev/null ||
		die "node ${n} did not start; see ${dir}/node${n}/log"
}

case "$cmd" in
up)
	port="${3:-}"
	[[ "$port" =~ ^[0-9]+$ ]] || die "up needs a base AMQP port"
	mkdir -p "$dir"
	printf '%s' "$port" >"${dir}/port"
	# A cookie of our own (not the system broker's, not ~/.erlang.cookie).
	if [[ ! -s "${dir}/.erlang.cookie" ]]; then
		head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${dir}/.erlang.cookie"
		chmod 400 "${dir}/.erlang.cookie"
	fi
	echo '[].' >"${dir}/enabled_plugins"
	# Own (empty) configuration files: the system broker's would set its port and name.
	: >"${dir}/rabbitmq.conf"
	: >"${dir}/rabbitmq-env.conf"
	echo '[].' >"${dir}/advanced.config"
	for n in "${NODES[@]}"; do
		start_node "$n"
	done
	for n in 2 3; do
		ctl "$n" -q stop_app >/dev/null
		ctl "$n" -q join_cluster "$(node_name 1)" >/dev/null
		ctl "$n" -q start_app >/dev/null
	done
	ctl 1 -q await_online_nodes 3 --timeout 60 >/dev/null ||
		die "the nodes did not form one cluster"
	urls=()
	for n in "${NODES[@]}"; do
		urls+=("amqp://guest:guest@127.0.0.1:$((port + n - 1))/%2f")
	done
	(
		IFS=,
		echo "${urls[*]}"
	)
	;;
kill)
	n="${3:-}"
	pid="$(cat "${dir}/node${n}/pid" 2>/dev/null)" || die "node ${n} has no pid file"
	kill -9 "$pid" 2>/dev/null || true
	rm -f "${dir}/node${n}/pid"
	log "node ${n} (pid ${pid}) killed"
	;;
start)
	n="${3:-}"
	start_node "$n"
	;;
ctl)
	n="${3:-}"
	shift 3
	ctl "$n" "$@"
	;;
down)
	if [[ -f "${dir}/port" ]]; then
		for n in "${NODES[@]}"; do
			pid="$(cat "${dir}/node${n}/pid" 2>/dev/null)" || continue
			kill -9 "$pid" 2>/dev/null || true
		done
	fi
	rm -rf "$dir"
	;;
*)
	die "unknown command ${cmd}"
	;;
esac
