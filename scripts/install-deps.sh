#!/usr/bin/env bash
# Installs what berth's tests need on a fresh Debian machine: the real
# registry clients (skopeo, podman, buildah, curl, jq and the Docker engine and
# client from Debian; oras from PyPI), the API fuzzer schemathesis (PyPI) and a
# running PostgreSQL. Safe to run again: it only installs what is missing.
set -euo pipefail

need_apt=()
for tool in skopeo podman buildah tar curl jq; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# Debian's docker.io brings dockerd and the docker client; the Docker test
# starts a private engine of its own (it needs no running service).
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  need_apt+=(docker.io)
fi
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql)
command -v pg_lsclusters >/dev/null 2>&1 || need_apt+=(postgresql-common)

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing with apt-get: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Python test dependencies from PyPI. Debian's own python3 refuses
# system-wide pip installs (PEP 668); these are test tools, so installing them
# anyway is harmless.
pip_install() {
  python3 -m pip --version >/dev/null 2>&1 || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  }
  python3 -m pip install --quiet "$@" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$@"
}

if ! python3 -c 'import oras.client' >/dev/null 2>&1; then
  echo "installing oras (PyPI)"
  pip_install oras
fi

# The schema-driven fuzzer of tests/api_fuzz.rs, pinned: its checks and
# report format change between versions.
SCHEMATHESIS_VERSION=4.32.5
if ! python3 -m schemathesis.cli --version 2>/dev/null | grep -qF "version $SCHEMATHESIS_VERSION"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION (PyPI)"
  pip_install "schemathesis==$SCHEMATHESIS_VERSION"
fi

# PostgreSQL must answer on 127.0.0.1:5432 for the metadata test suite.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_lsclusters >/dev/null 2>&1; then
    version=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
    if [ -n "$version" ]; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
  fi
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi
