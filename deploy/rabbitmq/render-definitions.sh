#!/bin/sh
# Fills in the passwords of a RabbitMQ definitions file (deploy/rabbitmq/definitions.json,
# generated from ms-common/src/messaging/permissions.rs) and keeps each one in a file.
#
#   render-definitions.sh DEFINITIONS SECRETS_DIR [OUT]
#
# For every placeholder "@PASSWORD:<user>@" in DEFINITIONS: the password is read from
# SECRETS_DIR/<user>/password, or generated (32 random bytes, hex) and written there the
# first time, so re-running keeps every password. The filled-in file goes to OUT
# (default SECRETS_DIR/rabbitmq/definitions.json), for RabbitMQ's load_definitions or
# `rabbitmqctl import_definitions`. POSIX sh, sed, od: runs in the rabbitmq image, on
# Debian and in CI. Idempotent. Passwords are never printed.
set -eu

defs="${1:?usage: render-definitions.sh DEFINITIONS SECRETS_DIR [OUT]}"
dir="${2:?usage: render-definitions.sh DEFINITIONS SECRETS_DIR [OUT]}"
out="${3:-${dir}/rabbitmq/definitions.json}"

umask 077
mkdir -p "$dir" "$(dirname "$out")"
tmp="${out}.tmp.$$"
cp "$defs" "$tmp"
users=$(grep -o '@PASSWORD:[A-Za-z0-9._-]*@' "$defs" | sed 's/^@PASSWORD://; s/@$//' | sort -u)
for user in $users; do
	mkdir -p "${dir}/${user}"
	file="${dir}/${user}/password"
	if [ ! -s "$file" ]; then
		od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"${file}.tmp.$$"
		mv "${file}.tmp.$$" "$file"
	fi
	# Readable by the service's (non-root) user in its own volume or directory.
	chmod 0644 "$file"
	chmod 0755 "${dir}/${user}"
	password=$(cat "$file")
	sed "s/@PASSWORD:${user}@/${password}/g" "$tmp" >"${tmp}.next"
	mv "${tmp}.next" "$tmp"
done
# RabbitMQ (its own user in its image) reads the file.
chmod 0644 "$tmp"
chmod 0755 "$(dirname "$out")"
mv "$tmp" "$out"
echo "render-definitions: ${out} ($(echo "$users" | wc -w) users; passwords under ${dir}/<user>/password)"
