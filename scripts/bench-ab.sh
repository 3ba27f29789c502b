#!/usr/bin/env bash
# Two berth binaries side by side in one berth-bench run, each on the
# embedded default (filesystem + embedded database) and as one replica on
# PostgreSQL (a database of its own): four targets, measured in turn in
# every round, so that load from elsewhere on the machine falls on all
# four alike. Prints the report (and writes it with --output FILE).
#
# Usage: scripts/bench-ab.sh BASE_BERTH NEW_BERTH [options] [berth-bench options...]
#   --postgres URL   server to create the databases on
#                    (default postgres://postgres@127.0.0.1:5432/postgres)
#   --bench PATH     berth-bench binary (default target/release/berth-bench)
# Everything else goes to berth-bench (default here: --rounds 3
# --scenarios manifest-get,manifest-head-tag).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 2 ]] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
base_bin=$(realpath "$1")
new_bin=$(realpath "$2")
shift 2
postgres=${BERTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
bench_bin=${CARGO_TARGET_DIR:-$repo_root/target}/release/berth-bench
bench_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --postgres) postgres=$2; shift 2 ;;
        --bench) bench_bin=$2; shift 2 ;;
        *) bench_args+=("$1"); shift ;;
    esac
done
[[ ${#bench_args[@]} -gt 0 ]] || bench_args=(--rounds 3 --scenarios manifest-get,manifest-head-tag)
for bin in "$base_bin" "$new_bin" "$bench_bin"; do
    [[ -x $bin ]] || { echo "bench-ab.sh: $bin is missing" >&2; exit 1; }
done
# Two builds from different checkouts into one target directory can leave
# the second a copy of the first (cargo finds its outputs fresh): then
# there is nothing to compare.
if cmp -s "$base_bin" "$new_bin"; then
    echo "bench-ab.sh: $base_bin and $new_bin are the same binary" >&2
    exit 1
fi

work=$(mktemp -d /tmp/berth-bench-ab.XXXXXX)
suffix=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
databases=(berth_ab_base_$suffix berth_ab_new_$suffix)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for db in "${databases[@]}"; do
        psql -q "$postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
declare -A target
start() { # name binary [env...]
    local name=$1 bin=$2 port
    shift 2
    port=$(free_port)
    mkdir -p "$work/$name"
    env BERTH_ADMIN_PASSWORD="$password" "$@" "$bin" serve \
        --data-dir "$work/$name" --addr "127.0.0.1:$port" 2>"$work/$name.log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$work/$name.log" >&2; exit 1; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true) == 200 ]] && break
        sleep 0.2
    done
    target[$name]="name=$name,url=http://127.0.0.1:$port,user=admin,password=$password,pid=$pid"
}

for which in base new; do
    bin=$base_bin
    [[ $which == new ]] && bin=$new_bin
    db=berth_ab_${which}_$suffix
    psql -q "$postgres" -c "CREATE DATABASE $db" >/dev/null
    start "embedded-$which" "$bin"
    start "pg-$which" "$bin" BERTH_DATABASE_URL="${postgres%/*}/$db" \
        BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY="$work/pg-$which-blobs"
done
# The first two are compared by berth-bench: the embedded default, base
# against new.
targets=()
for name in embedded-base embedded-new pg-base pg-new; do
    targets+=(--target "${target[$name]}")
done
mkdir -p "$work/scratch"
echo "bench-ab.sh: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bench_bin" "${targets[@]}" --scratch-dir "$work/scratch" "${bench_args[@]}"
echo "bench-ab.sh: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
