#!/usr/bin/env bash
# Runs the whole test suite. Starts PostgreSQL when it is installed but stopped, and installs Debian's
# chromium for the browser tests when it is missing (CI=true makes both mandatory).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || \
    echo "warning: could not install chromium; browser tests will skip (or fail when CI=true)"
fi
mkdir -p artifacts
exec "$BIN/python" -m pytest -q -ra "$@"
