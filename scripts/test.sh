#!/usr/bin/env bash
# Runs every test berth has: formatting, lints, unit and property tests, the
# metadata suite on SQLite and PostgreSQL, HTTP integration tests, and the
# real clients (podman, buildah, skopeo, oras, docker). Missing tools fail
# the run.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

# Tests that need an outside tool or service fail instead of skipping.
export BERTH_REQUIRE_POSTGRES=1
export BERTH_REQUIRE_CLIENTS=1
export BERTH_REQUIRE_ROOT=1
# SeaweedFS and Azurite, for the storage driver suite and the replica tests.
export BERTH_REQUIRE_OBJECT_STORES=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
# The 6 GiB blob through S3 (tests/object_store_large_blob.rs): minutes, so
# ignored by the run above and run here by name.
cargo test --test object_store_large_blob -- --ignored
