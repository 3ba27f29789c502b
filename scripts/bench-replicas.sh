#!/usr/bin/env bash
# Benchmarks berth's deployments side by side in one run: the embedded
# default (filesystem + embedded database), one replica on PostgreSQL, and
# three replicas on PostgreSQL behind nginx (round robin, docs/nginx-berth.conf),
# the replicas sharing one blob directory. Writes the report to
# docs/benchmarks-replicas.md unless --output says otherwise.
#
# Usage: scripts/bench-replicas.sh [options] [berth-bench options...]
#   --output FILE           report path (default docs/benchmarks-replicas.md)
#   --postgres URL          server to create the benchmark database on
#                           (default postgres://postgres@127.0.0.1:5432/postgres)
#   --no-build              use the binaries already built
#   --keep-data             keep the temporary directories
# Everything else goes to berth-bench (default here: --rounds 3
# --blob-size 256MiB --scenarios push-monolithic,push-chunked,pull,manifest-get,manifest-head,small-images).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

output=docs/benchmarks-replicas.md
postgres=${BERTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
build=true
keep_data=false
bench_args=()
command_line="scripts/bench-replicas.sh $*"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --output) output=$2; shift 2 ;;
        --postgres) postgres=$2; shift 2 ;;
        --no-build) build=false; shift ;;
        --keep-data) keep_data=true; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) bench_args+=("$1"); shift ;;
    esac
done
if [[ ${#bench_args[@]} -eq 0 ]]; then
    bench_args=(--rounds 3 --blob-size 256MiB
        --scenarios push-monolithic,push-chunked,pull,manifest-get,manifest-head,small-images)
fi

log() { echo "bench-replicas.sh: $*" >&2; }

missing=()
command -v psql >/dev/null || missing+=(postgresql-client)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

target_dir=${CARGO_TARGET_DIR:-$repo_root/target}
if $build; then
    cargo build --release -p berth -p berth-bench
fi
bench_bin=$target_dir/release/berth-bench
berth_bin=$target_dir/release/berth
for bin in "$bench_bin" "$berth_bin"; do
    [[ -x $bin ]] || { log "$bin is missing (build it or drop --no-build)"; exit 1; }
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

work=$(mktemp -d /tmp/berth-bench-replicas.XXXXXX)
database=berth_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql -q "$postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    if $keep_data; then log "data kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -q "$postgres" -c "CREATE DATABASE $database" >/dev/null
database_url=${postgres%/*}/$database
password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)

wait_ready() { # name port pid
    for _ in $(seq 1 300); do
        kill -0 "$3" 2>/dev/null || { log "$1 exited; its log:"; tail -n 30 "$work/$1.log" >&2; exit 1; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz" || true) == 200 ]] && return 0
        sleep 0.2
    done
    log "$1 not ready after 60 s"; tail -n 30 "$work/$1.log" >&2; exit 1
}

start_berth() { # name port [env...]
    local name=$1 port=$2
    shift 2
    mkdir -p "$work/$name"
    env BERTH_ADMIN_PASSWORD="$password" "$@" "$berth_bin" serve \
        --data-dir "$work/$name" --addr "127.0.0.1:$port" 2>"$work/$name.log" &
    started_pid=$!
    pids+=("$started_pid")
    wait_ready "$name" "$port" "$started_pid"
}

embedded_port=$(free_port)
start_berth embedded "$embedded_port"
embedded_pid=$started_pid

shared=(BERTH_DATABASE_URL="$database_url" BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY="$work/shared-blobs")
replica_ports=()
replica_pids=()
for i in 0 1 2; do
    port=$(free_port)
    start_berth "replica-$i" "$port" "${shared[@]}"
    replica_ports+=("$port")
    replica_pids+=("$started_pid")
done

# nginx with the configuration README shows, as the tests use it.
lb_port=$(free_port)
mkdir -p "$work/nginx/logs"
servers=$(for p in "${replica_ports[@]}"; do printf 'server 127.0.0.1:%s max_fails=1 fail_timeout=5s;\n' "$p"; done)
sed -e "s|@UPSTREAM_SERVERS@|$(echo "$servers" | tr '\n' ' ')|" \
    -e "s|@LISTEN@|127.0.0.1:$lb_port|" \
    -e "s|@NEXT_UPSTREAM@|off|" docs/nginx-berth.conf >"$work/nginx/berth.conf"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    include $work/nginx/berth.conf;
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx.log" &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 1 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lb_port/readyz" || true) == 200 ]] && break
    sleep 0.1
done

mkdir -p "$work/scratch"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
"$bench_bin" \
    --target "name=embedded,url=http://127.0.0.1:$embedded_port,user=admin,password=$password,pid=$embedded_pid" \
    --target "name=one-replica-pg,url=http://127.0.0.1:${replica_ports[0]},user=admin,password=$password,pid=${replica_pids[0]}" \
    --target "name=three-replicas-nginx,url=http://127.0.0.1:$lb_port,user=admin,password=$password" \
    --scratch-dir "$work/scratch" \
    --output "$work/report.md" \
    "${bench_args[@]}" || status=$?
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[[ -s $work/report.md ]] || { log "no report (exit $status)"; exit $((status == 0 ? 1 : status)); }

{
    echo "# Benchmarks: deployments side by side"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); berth commit $(git rev-parse --short HEAD)"
    echo "- CPU: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "- Load average before: $load_before; after: $load_after"
    echo "- Command: \`$command_line\`"
    echo
    echo "Targets: \`embedded\` is berth on its defaults (filesystem + embedded"
    echo "database); \`one-replica-pg\` one replica of three on PostgreSQL, reached"
    echo "directly; \`three-replicas-nginx\` all three behind nginx (round robin,"
    echo "docs/nginx-berth.conf), so consecutive requests of one push (chunks"
    echo "included) land on different replicas. The replicas share one blob"
    echo "directory. Everything runs on this one machine: nginx, three replicas,"
    echo "PostgreSQL and the load generator share its cores."
    echo
    sed -n '/^## /,$p' "$work/report.md"
} >"$output"
log "report written to $output"
exit "$status"
