#!/usr/bin/env bash
# Benchmarks berth's deployments side by side in one run: the embedded
# default (filesystem + embedded database), one replica on PostgreSQL, and
# three replicas on PostgreSQL behind nginx (round robin, docs/nginx-berth.conf),
# the replicas sharing one blob directory; then the same on SeaweedFS (S3,
# one `weed mini` process) + PostgreSQL, with blob reads redirected to the
# store (the default) and streamed through berth (disableRedirect). Writes
# the report to docs/benchmarks-replicas.md unless --output says otherwise.
#
# Usage: scripts/bench-replicas.sh [options] [berth-bench options...]
#   --output FILE           report path (default docs/benchmarks-replicas.md)
#   --postgres URL          server to create the benchmark databases on
#                           (default postgres://postgres@127.0.0.1:5432/postgres)
#   --no-s3                 the filesystem deployments only
#   --only-s3               the SeaweedFS deployments only (and the embedded default)
#   --db-connections N      each replica's database pool (database.maxConnections,
#                           default 8: nine replicas, each with its pool and
#                           its change listener, stay within PostgreSQL's
#                           default max_connections of 100)
#   --replica-env NAME=VALUE  a variable for every replica (not the embedded
#                           default), e.g. BERTH_REQUESTS_READ_MAX_RUNNING=8 with
#                           --scenarios manifest-get-shed; repeatable
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
filesystem=true
s3=true
replica_env=()
db_connections=8
bench_args=()
command_line="scripts/bench-replicas.sh $*"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --output) output=$2; shift 2 ;;
        --postgres) postgres=$2; shift 2 ;;
        --no-s3) s3=false; shift ;;
        --only-s3) filesystem=false; shift ;;
        --replica-env) replica_env+=("$2"); shift 2 ;;
        --db-connections) db_connections=$2; shift 2 ;;
        --no-build) build=false; shift ;;
        --keep-data) keep_data=true; shift ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
    source scripts/lib/apt.sh
    apt_install "${missing[@]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if $s3; then
    # SeaweedFS's `weed`, where scripts/install-deps.sh puts it (PyPI).
    weed_bin=${BERTH_WEED:-$(command -v weed ||
        echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed")}
    [[ -x $weed_bin ]] || {
        log "SeaweedFS's weed is missing (scripts/install-deps.sh installs it), or pass --no-s3"
        exit 1
    }
fi

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
source scripts/lib/seaweed.sh

work=$(mktemp -d /tmp/berth-bench-replicas.XXXXXX)
run_id=$(random_hex 6)
databases=()
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for database in "${databases[@]}"; do
        psql -q "$postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if $keep_data; then log "data kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh database for one deployment; sets database_url.
new_database() { # name
    local database=berth_bench_${run_id}_$1
    psql -q "$postgres" -c "CREATE DATABASE $database" >/dev/null
    databases+=("$database")
    database_url=${postgres%/*}/$database
}
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

# nginx with the configuration README shows, as the tests use it, in front
# of the replicas listening on PORTS; sets lb_port.
start_nginx() { # name ports...
    local name=$1 dir=$work/$1 servers=
    shift
    lb_port=$(free_port)
    mkdir -p "$dir/logs"
    for port in "$@"; do servers+="server 127.0.0.1:$port max_fails=1 fail_timeout=5s; "; done
    sed -e "s|@UPSTREAM_SERVERS@|$servers|" \
        -e "s|@LISTEN@|127.0.0.1:$lb_port|" \
        -e "s|@NEXT_UPSTREAM@|off|" docs/nginx-berth.conf >"$dir/berth.conf"
    printf '%s\n' \
        "worker_processes 2;" \
        "pid $dir/nginx.pid;" \
        "error_log $dir/logs/error.log warn;" \
        "events { worker_connections 4096; }" \
        "http {" \
        "    access_log off;" \
        "    client_body_temp_path $dir/body;" \
        "    proxy_temp_path $dir/proxy;" \
        "    include $dir/berth.conf;" \
        "}" >"$dir/nginx.conf"
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>"$work/$name.log" &
    pids+=("$!")
    for _ in $(seq 1 100); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lb_port/readyz" || true) == 200 ]] && return 0
        sleep 0.1
    done
    log "$name does not answer; its log:"; tail -n 30 "$work/$name.log" >&2; exit 1
}

# Three replicas PREFIX-0..2 with the variables ENV, behind nginx; sets
# replica_ports, replica_pids and lb_port, and lb1_port: another nginx in
# front of replica 0 alone, which tells what the load balancer's hop costs
# from what spreading a push over replicas costs.
start_replicas() { # prefix env...
    local prefix=$1 port
    shift
    replica_ports=()
    replica_pids=()
    for i in 0 1 2; do
        port=$(free_port)
        start_berth "$prefix-$i" "$port" BERTH_DATABASE_MAX_CONNECTIONS="$db_connections" "$@" \
            ${replica_env[@]+"${replica_env[@]}"}
        replica_ports+=("$port")
        replica_pids+=("$started_pid")
    done
    start_nginx "$prefix-nginx-0" "${replica_ports[0]}"
    lb1_port=$lb_port
    start_nginx "$prefix-nginx" "${replica_ports[@]}"
}

targets=()
add_target() { # name url [pid]
    local spec="name=$1,url=$2,user=admin,password=$password"
    [[ -z ${3:-} ]] || spec+=",pid=$3"
    targets+=(--target "$spec")
}

embedded_port=$(free_port)
start_berth embedded "$embedded_port"
add_target embedded "http://127.0.0.1:$embedded_port" "$started_pid"

if $filesystem; then
    new_database fs
    start_replicas replica BERTH_DATABASE_URL="$database_url" \
        BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY="$work/shared-blobs"
    add_target one-replica-pg "http://127.0.0.1:${replica_ports[0]}" "${replica_pids[0]}"
    add_target one-replica-nginx "http://127.0.0.1:$lb1_port"
    add_target three-replicas-nginx "http://127.0.0.1:$lb_port"
fi

if $s3; then
    start_seaweed
    for variant in redirect stream; do
        new_database "s3_$variant"
        new_bucket "berth-bench-$run_id-$variant"
        env=(BERTH_DATABASE_URL="$database_url" BERTH_STORAGE_S3_BUCKET="$bucket"
            BERTH_STORAGE_S3_REGION_ENDPOINT="$s3_endpoint"
            BERTH_STORAGE_S3_ACCESS_KEY="$s3_access" BERTH_STORAGE_S3_SECRET_KEY="$s3_secret")
        suffix=
        if [[ $variant == stream ]]; then
            env+=(BERTH_DISABLE_REDIRECT=true)
            suffix=-stream
        fi
        start_replicas "s3-$variant" "${env[@]}"
        add_target "s3-one-replica$suffix" "http://127.0.0.1:${replica_ports[0]}" "${replica_pids[0]}"
        # Pushes are the same either way: the load balancer's cost is shown once.
        [[ -n $suffix ]] || add_target s3-one-nginx "http://127.0.0.1:$lb1_port"
        add_target "s3-three-nginx$suffix" "http://127.0.0.1:$lb_port"
    done
fi

mkdir -p "$work/scratch"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
"$bench_bin" "${targets[@]}" \
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
    echo "- Every replica (not \`embedded\`) with: BERTH_DATABASE_MAX_CONNECTIONS=$db_connections ${replica_env[*]}"
    echo
    echo "Targets: \`embedded\` is berth on its defaults (filesystem + embedded"
    echo "database); \`one-replica-pg\` one replica of three on PostgreSQL, reached"
    echo "directly; \`three-replicas-nginx\` all three behind nginx (round robin,"
    echo "docs/nginx-berth.conf), so consecutive requests of one push (chunks"
    echo "included) land on different replicas; \`one-replica-nginx\` is the first"
    echo "replica alone behind an nginx of its own, the load balancer's hop without"
    echo "the spreading. Those replicas share one blob directory. \`s3-one-replica\`,"
    echo "\`s3-one-nginx\` and \`s3-three-nginx\` are the same on"
    echo "SeaweedFS (S3, one \`weed mini\` process) with a database of their own:"
    echo "blob reads are answered 307 to a signed URL, which the client follows to"
    echo "SeaweedFS. The \`-stream\` targets are three more such replicas (another"
    echo "database and bucket) with \`disableRedirect: true\`: they stream blob reads"
    echo "from SeaweedFS themselves. Everything runs on this one machine: nginx, the"
    echo "replicas, SeaweedFS, PostgreSQL and the load generator share its cores."
    echo
    sed -n '/^## /,$p' "$work/report.md"
} >"$output"
log "report written to $output"
exit "$status"
