#!/usr/bin/env bash
# Makes sure poppler's pdfinfo and pdftoppm (Debian's poppler-utils) are installed: the
# router counts a PDF's pages and renders its first pages as previews with them.
#
# Idempotent: exits 0 at once when both are on the PATH; otherwise installs
# poppler-utils with apt-get (as root, or through sudo). Exits non-zero when it cannot;
# the run command then goes on without PDF previews, the tests fail.
set -euo pipefail

log() { printf 'ensure-poppler: %s\n' "$*" >&2; }

if command -v pdftoppm >/dev/null 2>&1 && command -v pdfinfo >/dev/null 2>&1; then
	exit 0
fi

as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		return 1
	fi
}

if ! command -v apt-get >/dev/null 2>&1; then
	log "pdftoppm/pdfinfo are missing and apt-get is not available; install poppler-utils"
	exit 1
fi
log "installing poppler-utils (PDF page counts and previews)..."
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null 2>&1; then
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null 2>&1 || {
		log "apt-get install poppler-utils failed"
		exit 1
	}
fi
command -v pdftoppm >/dev/null 2>&1 || {
	log "poppler-utils installed but pdftoppm is not on the PATH"
	exit 1
}
log "poppler-utils installed"
