# Shared by the benchmarks that need an upstream registry beside berth
# (scripts/bench-import.sh, scripts/bench-pull-through.sh). Sourced, not
# run. The sourcing script sets `bench_name` first, and `build` (true or
# false) before calling bench_build_berth.

bench_log() { echo "$bench_name: $*" >&2; }
log() { bench_log "$@"; }

# bench_require TOOL...: exits when one is missing.
bench_require() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            bench_log "$tool is missing: run scripts/install-deps.sh"
            exit 1
        fi
    done
}

# Builds the release binary unless --no-build was given; sets berth_bin.
bench_build_berth() {
    if $build; then
        bench_log "building berth (release)"
        cargo build --release --bin berth >&2
    fi
    berth_bin="${CARGO_TARGET_DIR:-target}/release/berth"
}

# A scratch directory ($work), removed on exit with every process in
# $pids and $berth_pid killed.
pids=()
berth_pid=
bench_workdir() {
    work=$(mktemp -d "/tmp/berth-$bench_name.XXXXXX")
    trap bench_cleanup EXIT
}
bench_cleanup() {
    local pid
    for pid in "${pids[@]}" $berth_pid; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Starts the reference registry (Debian's docker-registry) on loopback,
# plain HTTP, anonymous, with its access log in $work/registry.log; sets
# upstream (HOST:PORT).
start_upstream() {
    upstream="127.0.0.1:$(free_port)"
    cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $upstream
YAML
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    pids+=($!)
    local _
    for _ in $(seq 100); do curl -fs "http://$upstream/v2/" >/dev/null && break; sleep 0.1; done
}

# push_blob REGISTRY REPO CONTENT [CURL_ARGS...]: one monolithic upload
# (POST, then PUT with the digest); CONTENT is the bytes, or @FILE.
# Prints the digest.
push_blob() {
    local registry=$1 repo=$2 content=$3; shift 3
    local digest location
    if [[ $content == @* ]]; then
        digest="sha256:$(sha256sum "${content#@}" | cut -d' ' -f1)"
    else
        digest="sha256:$(printf '%s' "$content" | sha256sum | cut -d' ' -f1)"
    fi
    location=$(curl -fsS "$@" -X POST -o /dev/null -w '%header{location}' \
        "http://$registry/v2/$repo/blobs/uploads/")
    [[ $location == http* ]] || location="http://$registry$location"
    if [[ $location == *\?* ]]; then location="$location&digest=$digest"; else location="$location?digest=$digest"; fi
    curl -fsS "$@" -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "$content" "$location" -o /dev/null
    echo "$digest"
}
