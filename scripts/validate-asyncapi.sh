#!/usr/bin/env bash
# Validates docs/asyncapi.yaml and its consistency with the code and the other contract docs.
#
#   scripts/validate-asyncapi.sh              parse + consistency checks; exit 1 on any problem
#   scripts/validate-asyncapi.sh --self-test  also break copies of the files on purpose and
#                                             make sure the checks notice
#
# Checks (scripts/validate/check-asyncapi.cjs):
#   1. the official AsyncAPI parser (@asyncapi/parser, pinned) parses and validates the
#      document with its $refs to docs/schemas/*.json resolved; errors and warnings fail;
#   2. every relayed action of docs/actions.json (the catalogue generated from the Action
#      enum, ms-common/src/contract/action.rs) and every socket handler of ms-router is a
#      channel on the `router` server with a receive operation and a reply (the ack); every
#      fan-out push a channel with a send operation; no stale Socket.IO channels;
#   3. every event kind of docs/events.json (the catalogue generated from `EventKind`,
#      ms-common/src/events.rs, whose `Event` variants' wire types must equal it) is a
#      routing-key channel on stuffmart.events, with a publish operation and a message
#      pinned to that type;
#   4. each service's events queue (`consumers` in docs/events.json), the router fan-out
#      queue (`routerPushes`) and the hold queue (its `EventKind` in ms-order/src/hold.rs)
#      list exactly the routing keys the code binds, and their descriptions name exactly
#      those keys (no wildcards); each rpc.<service> channel lists exactly that service's
#      actions in docs/actions.json, and each relayed action's Socket.IO operation says it
#      is relayed to that queue;
#   5. every docs/schemas/*.json file is referenced (and every referenced file exists);
#   6. the exact client-facing messages (409/402 and others) are quoted verbatim in
#      docs/asyncapi.yaml and docs/contract.md; docs/contract.md points at every schema file
#      and names every event; docs/topology.md names every exchange, queue kind, header and
#      event and has a Mermaid diagram.
# The schema files, docs/actions.json and docs/events.json themselves are checked against
# the Rust types by `cargo test -p ms-common --test schemas` (UPDATE_SCHEMAS=1 regenerates
# them).
#
# Needs node (18+) and npm; installs the parser into
# ${XDG_CACHE_HOME:-~/.cache}/stuffmart/asyncapi (once; again when the pinned versions change).
#
# Environment:
#   VALIDATE_ASYNCAPI_ALLOW_SKIP=1   skip (exit 0) instead of failing when node/npm or the
#                                    parser cannot be installed
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
cd "$ROOT"

CHECK_ARGS=()
for arg in "$@"; do
	case "$arg" in
	--self-test) CHECK_ARGS+=(--self-test) ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "validate-asyncapi: unknown argument '${arg}' (try --help)" >&2
		exit 2
		;;
	esac
done

ALLOW_SKIP="${VALIDATE_ASYNCAPI_ALLOW_SKIP:-0}"
DEPS="${XDG_CACHE_HOME:-${HOME}/.cache}/stuffmart/asyncapi"
# Pinned: a new parser version may bring new rules; bump deliberately.
PACKAGE_JSON='{
  "name": "stuffmart-asyncapi-validate",
  "private": true,
  "description": "Tools for scripts/validate-asyncapi.sh (installed by it).",
  "dependencies": {
    "@asyncapi/parser": "3.6.3",
    "js-yaml": "4.1.0"
  }
}'

log() { printf 'validate-asyncapi: %s\n' "$*" >&2; }

unavailable() {
	if [[ "$ALLOW_SKIP" == 1 ]]; then
		log "SKIP: $* (VALIDATE_ASYNCAPI_ALLOW_SKIP=1)"
		exit 0
	fi
	log "ERROR: $* (VALIDATE_ASYNCAPI_ALLOW_SKIP=1 skips instead)"
	exit 1
}

as_root() {
	if [[ "$(id -u)" == 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		return 1
	fi
}

ensure_node() {
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
		return 0
	fi
	log "node/npm not found; installing Debian's nodejs and npm"
	command -v apt-get >/dev/null 2>&1 || return 1
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 || return 1
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
}

deps_ready() {
	[[ -f "${DEPS}/package.json" ]] &&
		[[ "$(cat "${DEPS}/package.json")" == "$PACKAGE_JSON" ]] &&
		[[ -f "${DEPS}/node_modules/@asyncapi/parser/package.json" ]] &&
		[[ -f "${DEPS}/node_modules/js-yaml/package.json" ]]
}

ensure_deps() {
	deps_ready && return 0
	log "installing @asyncapi/parser into ${DEPS}"
	mkdir -p "$DEPS"
	# Written without a trailing newline, exactly as deps_ready compares it.
	printf '%s' "$PACKAGE_JSON" >"${DEPS}/package.json"
	local out
	out="$(mktemp)"
	if ! (cd "$DEPS" && npm install --no-audit --no-fund --no-package-lock --loglevel=error) >"$out" 2>&1; then
		tail -n 30 "$out" >&2
		rm -f "$out"
		return 1
	fi
	rm -f "$out"
	deps_ready
}

ensure_node || unavailable "node and npm are not installed and could not be installed"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if ((NODE_MAJOR < 18)); then
	unavailable "node ${NODE_MAJOR} is too old (18+ needed)"
fi
ensure_deps || unavailable "could not install @asyncapi/parser from npm"

log "node $(node --version), @asyncapi/parser $(node -p "require('${DEPS}/node_modules/@asyncapi/parser/package.json').version")"
exec node scripts/validate/check-asyncapi.cjs --root "$ROOT" --deps "$DEPS" "${CHECK_ARGS[@]}"
