#!/usr/bin/env bash
# Make sure PostgreSQL server binaries are on this machine (Debian's packages).
# Installs them when run as root; otherwise prints the one command to run.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || command -v postgres >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "PostgreSQL server binaries are missing: run 'sudo apt-get install -y postgresql' and try again." >&2
  exit 2
fi
echo "Installing PostgreSQL server binaries (Debian package 'postgresql')..." >&2
# Symphony runs its own clusters: do not let the package create and start a 'main' cluster on 5432.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
