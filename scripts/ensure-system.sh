#!/usr/bin/env bash
# Make sure the system binaries Symphony's local runtime uses are here (Debian packages):
# PostgreSQL server binaries (for postgres services) and HAProxy (the traffic switch).
# Installs what is missing when run as root; otherwise prints the one command to run.
set -euo pipefail
missing=()
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && ! command -v postgres >/dev/null; then
  missing+=(postgresql)
fi
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
  missing+=(haproxy)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "Missing Debian packages: run 'sudo apt-get install -y ${missing[*]}' and try again." >&2
  exit 2
fi
echo "Installing ${missing[*]} (Debian packages)..." >&2
# Symphony runs its own clusters: do not let the package create and start a 'main' cluster on 5432.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
# No init system starts the packaged services here, and none should: Symphony runs its own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
