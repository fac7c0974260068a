#!/usr/bin/env bash
# Starts the five binaries with exactly the environment docker-compose.yml gives them
# (read from the compose file by scripts/validate/check_deploy.py --compose-env), except:
# SQLite under a temp DATA_DIR instead of MongoDB, delivered files in a directory under it
# instead of MinIO (the shared DOWNLOAD_LINK_KEY stays), the local broker under a unique
# AMQP_PREFIX, and free ports. Then runs the smoke flow: HTTP account routes, and a
# Socket.IO list → order → pay → sold flow. Cleans up processes and queues on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PREFIX="smoke$RANDOM$RANDOM."
DATA="$(mktemp -d)"
PIDS=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$DATA"
	if command -v rabbitmqctl >/dev/null 2>&1; then
		rabbitmqctl list_queues name --no-table-headers -q 2>/dev/null | grep "^${PREFIX//./\\.}" |
			while read -r q; do rabbitmqctl delete_queue -q "$q" >/dev/null 2>&1 || true; done
	fi
}
trap cleanup EXIT

[[ -x target/debug/ms-router ]] || cargo build --bins
ROUTER_PORT="$(free_port)"
start() {
	local svc="$1" health="$2"
	local -a envs
	mapfile -t envs < <(python3 scripts/validate/check_deploy.py --compose-env "$svc" --local)
	envs+=("AMQP_PREFIX=$PREFIX" "DATA_DIR=$DATA" "HEALTH_PORT=$health" "PORT=$ROUTER_PORT")
	env -i PATH="$PATH" HOME="${HOME:-/root}" "${envs[@]}" "target/debug/$svc" >"$DATA/$svc.log" 2>&1 &
	PIDS+=("$!")
}
wait_ok() {
	local url="$1" deadline=$((SECONDS + 60))
	until curl -fsS "$url" >/dev/null 2>&1; do
		((SECONDS < deadline)) || { echo "smoke: $url not ready" >&2; tail -n 5 "$DATA"/*.log >&2; exit 1; }
		sleep 0.3
	done
}
declare -A HEALTH
for svc in ms-user ms-stuff ms-order ms-payment; do
	HEALTH[$svc]="$(free_port)"
	start "$svc" "${HEALTH[$svc]}"
done
start ms-router 0
for svc in ms-user ms-stuff ms-order ms-payment; do wait_ok "http://127.0.0.1:${HEALTH[$svc]}/readyz"; done
U="http://127.0.0.1:$ROUTER_PORT"
wait_ok "$U/readyz"
echo "smoke: all five services ready with the compose environment (router on $ROUTER_PORT)"

JAR="$DATA/jar"
post() { curl -sS -o "$DATA/body" -w '%{http_code}' -b "$JAR" -c "$JAR" -H 'content-type: application/json' "$@"; }
expect() { [[ "$1" == "$2" ]] || { echo "smoke: $3 gave $1, expected $2: $(cat "$DATA/body")" >&2; exit 1; }; }
expect "$(post -d '{"email":"smoke@example.com","password":"password123"}' "$U/api/users/signup")" 201 signup
expect "$(post -d '{"email":"smoke@example.com","password":"password123"}' "$U/api/users/signin")" 200 signin
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessToken"])' "$DATA/body")"
expect "$(curl -sS -o "$DATA/body" -w '%{http_code}' -H "authorization: Bearer $TOKEN" "$U/api/users/me")" 200 me
expect "$(post -X POST "$U/api/users/refresh")" 200 refresh
expect "$(post -X POST "$U/api/users/signout")" 204 signout
expect "$(post -X POST "$U/api/users/refresh")" 401 "refresh after signout"
echo "smoke: HTTP account flow ok"

if [[ -d web-client/node_modules/socket.io-client ]]; then
	node scripts/validate/smoke-flow.mjs "$U"
else
	echo "smoke: web-client/node_modules missing (npm ci); Socket.IO flow skipped" >&2
	exit 1
fi
echo "smoke: passed"
