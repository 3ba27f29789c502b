#!/usr/bin/env bash
# Benchmarks berth side by side with the reference registry (CNCF
# distribution, Debian package docker-registry) on this machine and writes
# the report to docs/benchmarks.md.
#
# Usage: scripts/bench.sh [options] [berth-bench options...]
#   --output FILE           report path (default docs/benchmarks.md)
#   --berth-port PORT       default 5000
#   --reference-port PORT   default 5001
#   --reference-as-berth    run a second reference registry in berth's place
#                           (to check the harness itself; berth is not built)
#   --keep-data             keep the temporary data directories
#   --no-build              use the binaries already built (in
#                           ${CARGO_TARGET_DIR:-target}/release)
# Everything else goes to berth-bench, e.g. --rounds 5, --blob-size 256MiB,
# --scenarios push-monolithic,pull (see: berth-bench --help).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

output=docs/benchmarks.md
berth_port=5000
reference_port=5001
reference_as_berth=false
keep_data=false
build=true
bench_args=()
command_line="scripts/bench.sh $*"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --output) output=$2; shift 2 ;;
        --berth-port) berth_port=$2; shift 2 ;;
        --reference-port) reference_port=$2; shift 2 ;;
        --reference-as-berth) reference_as_berth=true; shift ;;
        --keep-data) keep_data=true; shift ;;
        --no-build) build=false; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) bench_args+=("$1"); shift ;;
    esac
done

log() { echo "bench.sh: $*" >&2; }

# --- tools ---------------------------------------------------------------
missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v curl >/dev/null || missing+=(curl)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    source scripts/lib/apt.sh
    apt_install "${missing[@]}"
fi

# Fail before the long build if another registry already holds a port.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for port in "$berth_port" "$reference_port"; do
    port_free "$port" || { log "port $port is already in use"; exit 1; }
done

# --- build -----------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo_root/target}
if ! $build; then
    log "not building; using the binaries in $target_dir/release"
elif $reference_as_berth; then
    cargo build --release -p berth-bench
else
    cargo build --release -p berth -p berth-bench
fi
bench_bin=$target_dir/release/berth-bench
berth_bin=$target_dir/release/berth
for bin in "$bench_bin" $($reference_as_berth || echo "$berth_bin"); do
    [[ -x $bin ]] || { log "$bin is missing (build it or drop --no-build)"; exit 1; }
done

# --- registries --------------------------------------------------------------
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if $keep_data; then
        log "data kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)

# Starts the reference registry: filesystem storage in a fresh directory,
# deletes enabled, htpasswd (bcrypt) auth, access log off so that it does not
# pay for logging every request (berth's log goes to a file as well).
start_reference() { # name port user
    local name=$1 port=$2 user=$3 dir=$work/$1
    mkdir -p "$dir/data"
    htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: $dir/htpasswd
EOF
    docker-registry serve "$dir/config.yml" 2>"$dir.log" &
    pids+=($!)
    started_pid=$!
}

wait_ready() { # name url pid log
    local name=$1 url=$2 pid=$3 logfile=$4
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during start-up; its log:"
            tail -n 30 "$logfile" >&2
            exit 1
        fi
        local code
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
        if [[ $code == 200 || $code == 401 ]]; then
            return 0
        fi
        sleep 0.2
    done
    log "$name not ready after 60 s; its log:"
    tail -n 30 "$logfile" >&2
    exit 1
}

if $reference_as_berth; then
    start_reference berth "$berth_port" admin
    berth_pid=$started_pid
    wait_ready berth "http://127.0.0.1:$berth_port/v2/" "$berth_pid" "$work/berth.log"
else
    mkdir -p "$work/berth-data"
    BERTH_ADMIN_PASSWORD=$password "$berth_bin" serve \
        --data-dir "$work/berth-data" --addr "127.0.0.1:$berth_port" 2>"$work/berth.log" &
    berth_pid=$!
    pids+=("$berth_pid")
    wait_ready berth "http://127.0.0.1:$berth_port/readyz" "$berth_pid" "$work/berth.log"
fi
start_reference reference "$reference_port" bench
reference_pid=$started_pid
wait_ready reference "http://127.0.0.1:$reference_port/v2/" "$reference_pid" "$work/reference.log"
log "berth pid $berth_pid on :$berth_port, reference pid $reference_pid on :$reference_port"

# --- run -------------------------------------------------------------------
mkdir -p "$work/scratch"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
"$bench_bin" \
    --target "name=berth,url=http://127.0.0.1:$berth_port,user=admin,password=$password,pid=$berth_pid" \
    --target "name=reference,url=http://127.0.0.1:$reference_port,user=bench,password=$password,pid=$reference_pid" \
    --scratch-dir "$work/scratch" \
    --output "$work/report.md" \
    "${bench_args[@]}" || status=$?

if [[ ! -s $work/report.md ]]; then
    log "berth-bench produced no report (exit $status)"
    exit $((status == 0 ? 1 : status))
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
os_name=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if ! git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null; then
    commit="$commit with uncommitted changes"
fi
$build || commit="$commit (binary built beforehand: --no-build)"
fs_type=$(df -T "$work" | awk 'NR == 2 {print $2}')
mkdir -p "$(dirname "$output")"
{
    echo "# Benchmarks"
    echo
    if $reference_as_berth; then
        echo "> **Harness check only:** the column named \"berth\" is a second instance of"
        echo "> the reference registry (\`--reference-as-berth\`), not berth."
        echo
    fi
    echo "Machine:"
    echo
    echo "- CPU: $(nproc) cores available, ${cpu_model:-unknown model}"
    echo "- RAM: $mem_gib GiB"
    echo "- Kernel: $(uname -sr), $os_name"
    echo "- Storage: $fs_type (registry data dirs and scratch under /tmp)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Load average (1, 5, 15 min) before the run: $load_before; after: $load_after"
    echo "- berth: commit $commit; reference: $(docker-registry --version 2>/dev/null | head -n 1); $(skopeo --version 2>/dev/null); $(rustc --version 2>/dev/null)"
    echo
    echo "How the figures were taken: both registries ran on this machine on loopback"
    echo "(127.0.0.1), each with a fresh empty data directory, with password"
    echo "authentication (berth: its admin user; reference: htpasswd with bcrypt, access log off)."
    echo "berth-bench talks to them only through the OCI distribution HTTP API (and skopeo),"
    echo "runs every scenario on both in the same run, alternating berth then reference in"
    echo "each round, and checks every response (status codes, digests, counts); a failure"
    echo "is reported as FAILED, never measured. Client, registries and skopeo all share"
    echo "the machine's cores, so absolute figures are lower than on a dedicated server;"
    echo "compare the ratio and the \`ceilings\` rows, and mind the load average above:"
    echo "other work on the machine moves every figure. Memory and CPU figures come from"
    echo "/proc/PID of each registry process. The reference checks the bcrypt htpasswd"
    echo "entry (htpasswd -B, cost 5) on every request, which is what bounds its request"
    echo "rate in the manifest and small-image scenarios (see its server CPU rows)."
    echo
    echo "Reproduce with \`scripts/bench.sh\` (needs the Debian packages docker-registry,"
    echo "skopeo and apache2-utils, installed on demand). Options: \`--rounds N\`,"
    echo "\`--scenarios a,b,...\`, \`--blob-size 256MiB\`, \`--output FILE\`; the rest are"
    echo "listed by \`target/release/berth-bench --help\`."
    echo
    echo "Command: \`$command_line\`"
    echo
    cat "$work/report.md"
} >"$output"
log "report written to $output"
exit "$status"
