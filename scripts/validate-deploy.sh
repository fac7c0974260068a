#!/usr/bin/env bash
# Validates StuffMart's deployment files without a Docker engine or a cluster.
#
#   scripts/validate-deploy.sh             every check below; exit 1 when any fails
#   scripts/validate-deploy.sh --self-test also break copies of the files on purpose and
#                                          make sure the consistency checker reports each
#
# Each file on its own, with standard tools:
#   1. docker-compose.yml: `docker compose config` (v2 plugin, else docker-compose v1),
#      with and without .env.example and with the seed profile, and the compose-spec JSON
#      Schema (check-jsonschema's vendored copy);
#   2. Kubernetes: every manifest under deploy/k8s (templates included), and what
#      `kubectl kustomize` renders for deploy/k8s and the dev overlay deploy/k8s/dev,
#      against the Kubernetes JSON schemas of kubernetes-validate (strict: unknown fields
#      fail);
#   3. .github/workflows/*.yml against the GitHub workflow JSON Schema.
# Then the files against each other and the code (scripts/validate/check_deploy.py, which
# reads the kustomizations as `kubectl kustomize` renders them, dev patches included):
# binaries, env vars against README's configuration table, ports, probes, URLs, Secret and
# ConfigMap keys, Pod Security, versions, .dockerignore (matched with pathspec),
# skaffold.yaml, delivered files (ms-router alone has the object store and its S3
# credentials from a secret, ms-router and ms-stuff share one DOWNLOAD_LINK_KEY, the upload
# Ingress takes MAX_FILE_BYTES), and the sh/bash/JavaScript syntax of the commands embedded
# in those files.
#
# Installs what is missing, quietly: PyYAML, pathspec, check-jsonschema and
# kubernetes-validate from PyPI (into a virtualenv under ${XDG_CACHE_HOME:-~/.cache}/stuffmart
# when the current python3 lacks them), kubectl with apt-get, and Debian's docker-compose
# when no compose is found.
#
# Environment:
#   VALIDATE_DEPLOY_ALLOW_SKIP=1   a tool that cannot be installed (kubectl included) skips
#                                  its checks instead of failing (for machines without
#                                  apt/pip access)
#   K8S_SCHEMA_VERSION             Kubernetes version of the schemas (default: the package's)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
cd "$ROOT"

SELF_TEST=0
for arg in "$@"; do
	case "$arg" in
	--self-test) SELF_TEST=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "validate-deploy: unknown argument '${arg}' (try --help)" >&2
		exit 2
		;;
	esac
done

ALLOW_SKIP="${VALIDATE_DEPLOY_ALLOW_SKIP:-0}"
PY_PACKAGES=("pyyaml>=6" "pathspec>=0.12" "check-jsonschema>=0.29" "kubernetes-validate>=1.31")
VENV="${XDG_CACHE_HOME:-${HOME}/.cache}/stuffmart/validate-venv"

RESULTS=()
FAILED=0
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

log() { printf 'validate-deploy: %s\n' "$*" >&2; }

pass() { RESULTS+=("PASS  $1"); }
fail() {
	RESULTS+=("FAIL  $1")
	FAILED=1
}
skip() { RESULTS+=("SKIP  $1 ($2)"); }
# A tool is missing and could not be installed.
missing() {
	local label="$1" why="$2"
	if [[ "$ALLOW_SKIP" == 1 ]]; then
		skip "$label" "$why"
	else
		log "ERROR: ${label}: ${why} (VALIDATE_DEPLOY_ALLOW_SKIP=1 skips instead)"
		fail "${label}: ${why}"
	fi
}

# Runs one check, prints its output indented, records PASS/FAIL, never stops the script.
check() {
	local label="$1" status=0
	shift
	printf '\n=== %s ===\n' "$label"
	"$@" >"$TMP/out" 2>&1 || status=$?
	sed 's/^/  /' "$TMP/out"
	if ((status == 0)); then
		pass "$label"
	else
		printf '  -> FAILED (exit %s)\n' "$status"
		fail "$label"
	fi
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

APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 || return 1
	if ((APT_UPDATED == 0)); then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
		APT_UPDATED=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

# --- Python tools ----------------------------------------------------------------------
PY=""
py_has_tools() {
	"$1" - <<'EOF' >/dev/null 2>&1
import yaml, pathspec, check_jsonschema, kubernetes_validate
EOF
}

setup_python() {
	command -v python3 >/dev/null 2>&1 || apt_install python3 || true
	if ! command -v python3 >/dev/null 2>&1; then
		return 1
	fi
	if py_has_tools python3; then
		PY=python3
		return 0
	fi
	if [[ -x "${VENV}/bin/python" ]] && py_has_tools "${VENV}/bin/python"; then
		PY="${VENV}/bin/python"
		return 0
	fi
	log "installing ${PY_PACKAGES[*]} into ${VENV}"
	mkdir -p "$(dirname "$VENV")"
	if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
		rm -rf "$VENV"
		apt_install python3-venv || true
		python3 -m venv "$VENV" >/dev/null 2>&1 || return 1
	fi
	"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >"$TMP/pip.log" 2>&1 || {
		tail -n 20 "$TMP/pip.log" >&2
		return 1
	}
	py_has_tools "${VENV}/bin/python" || return 1
	PY="${VENV}/bin/python"
}

# --- compose ---------------------------------------------------------------------------
COMPOSE=()
setup_compose() {
	if docker compose version >/dev/null 2>&1; then
		COMPOSE=(docker compose)
	elif command -v docker-compose >/dev/null 2>&1; then
		COMPOSE=(docker-compose)
	else
		log "installing docker-compose (Debian package)"
		apt_install docker-compose || true
		command -v docker-compose >/dev/null 2>&1 || return 1
		COMPOSE=(docker-compose)
	fi
}

# check() runs these in an `||` context, where `set -e` does not apply: every step
# returns on failure explicitly.
compose_config() {
	# Offline: config only parses, interpolates and validates; it contacts no engine.
	local version
	version="$("${COMPOSE[@]}" version --short 2>/dev/null || "${COMPOSE[@]}" version | head -n 1)"
	"${COMPOSE[@]}" -f docker-compose.yml config -q || return 1
	echo "docker-compose.yml is valid for ${COMPOSE[*]} ${version}"
	"${COMPOSE[@]}" --env-file .env.example -f docker-compose.yml config -q || return 1
	echo "... and with --env-file .env.example"
	"${COMPOSE[@]}" -f docker-compose.yml --profile seed config -q || return 1
	echo "... and with --profile seed"
	echo "services: $("${COMPOSE[@]}" -f docker-compose.yml --profile seed config --services | sort | tr '\n' ' ')"
}

# --- kubectl (renders the kustomizations) ----------------------------------------------
setup_kubectl() {
	if ! command -v kubectl >/dev/null 2>&1; then
		log "installing kubectl (apt-get)"
		apt_install kubectl || true
	fi
	command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1
}

# --- Kubernetes ------------------------------------------------------------------------
k8s_manifests() {
	find deploy/k8s -type f \( -name '*.yaml' -o -name '*.yml' \) ! -name 'kustomization.y*ml' | sort
}

k8s_validate_files() {
	local version_args=()
	if [[ -n "${K8S_SCHEMA_VERSION:-}" ]]; then
		version_args=(-k "$K8S_SCHEMA_VERSION")
	fi
	"$PY" -m kubernetes_validate --strict --quiet "${version_args[@]}" "$@" || return 1
	echo "$# file(s): every resource matches the Kubernetes schemas (strict)"
}

k8s_render_and_validate() {
	local dir out status=0
	for dir in deploy/k8s deploy/k8s/dev; do
		[[ -f "${dir}/kustomization.yaml" ]] || continue
		out="$TMP/$(echo "$dir" | tr '/' '_').yaml"
		if ! kubectl kustomize "$dir" >"$out" 2>"$TMP/kustomize.err"; then
			cat "$TMP/kustomize.err"
			echo "kubectl kustomize ${dir} failed"
			status=1
			continue
		fi
		echo "kubectl kustomize ${dir}: $(grep -c '^kind:' "$out") resources"
		k8s_validate_files "$out" || status=1
	done
	return "$status"
}

# --- Run -------------------------------------------------------------------------------
if setup_python; then
	log "python: ${PY}"
else
	PY=""
fi

if [[ -z "$PY" ]]; then
	missing "python tools" "python3 with ${PY_PACKAGES[*]} could not be set up"
fi

HAVE_KUBECTL=0
if setup_kubectl; then
	HAVE_KUBECTL=1
else
	missing "k8s: kubectl kustomize" "kubectl is not installed and apt-get could not install it"
fi

if setup_compose; then
	check "compose: ${COMPOSE[*]} config" compose_config
else
	missing "compose: config" "neither 'docker compose' nor docker-compose is available"
fi

if [[ -n "$PY" ]]; then
	check "compose: compose-spec JSON Schema" \
		"$PY" -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

	mapfile -t MANIFESTS < <(k8s_manifests)
	check "k8s: manifests against the Kubernetes schemas" k8s_validate_files "${MANIFESTS[@]}"
	if ((HAVE_KUBECTL)); then
		check "k8s: kubectl kustomize + schemas" k8s_render_and_validate
	fi

	mapfile -t WORKFLOWS < <(find .github/workflows -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
	check "workflow: GitHub workflow JSON Schema" \
		"$PY" -m check_jsonschema --builtin-schema vendor.github-workflows "${WORKFLOWS[@]}"

	check "consistency (scripts/validate/check_deploy.py)" "$PY" scripts/validate/check_deploy.py
	if ((SELF_TEST)); then
		check "consistency self-test (deliberate breaks)" "$PY" scripts/validate/check_deploy.py --self-test
	fi
fi

skip "skaffold.yaml schema" "no skaffold schema in a reachable package; checked for consistency only"
skip "docker build / compose up" "no Docker engine here; the GitHub workflow's image job builds and smoke-tests"

printf '\n=== Summary ===\n'
for line in "${RESULTS[@]}"; do
	printf '  %s\n' "$line"
done
if ((FAILED)); then
	printf 'validate-deploy: FAILED\n'
	exit 1
fi
printf 'validate-deploy: all checks passed\n'
