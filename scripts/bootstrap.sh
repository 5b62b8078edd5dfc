#!/usr/bin/env bash
# Installs system packages (Java, Maven, Redis, PostgreSQL, kcat, Chromium for the drift report's browser test),
# uv and the locked Python environment.
# Idempotent and quick when everything is already there. Kafka jars and tritonserver are fetched lazily
# by kestrel-stack into ~/.cache/kestrel on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v redis-server >/dev/null || need+=(redis-server)
command -v kcat >/dev/null || need+=(kcat)
command -v chromium >/dev/null || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing system packages: ${need[*]} (install them, or run as root)" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package starts its own servers; the stack runs its own on free ports.
  service redis-server stop >/dev/null 2>&1 || true
  service postgresql stop >/dev/null 2>&1 || true
fi

if ! command -v uv >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check uv
fi
uv sync --frozen --quiet
