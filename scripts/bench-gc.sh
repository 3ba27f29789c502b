#!/usr/bin/env bash
# Benchmarks storage reclamation on a registry of 100,000 blobs and 10,000
# manifests (berth-bench's gc-populate: images of 9 unique 2 KiB layers and
# a config, every other image then deleted by digest, so that 50,000 blobs
# and 5,000 manifests are garbage), side by side:
#
#   berth, filesystem + embedded database   the pruner run by hand
#   berth, SeaweedFS (S3) + PostgreSQL       (`POST …/imagepruners/cluster/prunes`,
#                                            which trims and then collects),
#                                            while clients push and pull;
#   the reference registry (Debian's docker-registry, distribution 2.8):
#                                            `docker-registry garbage-collect
#                                            --delete-untagged`, which needs
#                                            the registry stopped (or read-only)
#                                            for the whole run: its write outage.
#
# For each: the collection's time, the registry's peak resident memory
# while it runs (berth: the server's, sampled every 0.1 s; the reference:
# the garbage-collect process's), the blobs left on storage, and
# push+pull+delete throughput (berth-bench's gc-probe: clients pushing a
# small image, pulling it back and deleting it, so that the tagged content
# stays as populated however long the run) without and during the
# collection, in rounds of 2 s: the rounds wholly inside the collection
# count, and "without" is the mean of the rounds just before it and just
# after it (the load the machine carries drifts over a run of many
# minutes).
#
# Usage: scripts/bench-gc.sh [--manifests N] [--no-s3] [--no-reference] [--no-build]
#                            [--output FILE] [--berth-env NAME=VALUE]...
#                            [--rounds-without N]
#   --manifests N   images pushed (default 10000: 100,000 blobs)
#   --no-s3         skip the SeaweedFS + PostgreSQL deployment
#   --no-filesystem skip the filesystem + embedded database deployment
#   --no-reference  skip the reference registry
#   --berth-env NAME=VALUE  more environment for berth (BERTH_GC_BUSY_PERCENT=100)
#   --no-build      use target/release/{berth,berth-bench} as built
#   --output FILE   also write the Markdown table there
#   --rounds-without N  probe rounds before and again after the collection
#                   (default 10; more narrow the baseline's noise)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
manifests=10000
s3=true
filesystem=true
reference=true
berth_env=()
build=true
output=
probe_rounds=10
postgres=${BERTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --manifests) manifests=$2; shift 2 ;;
        --no-s3) s3=false; shift ;;
        --no-filesystem) filesystem=false; shift ;;
        --no-reference) reference=false; shift ;;
        --berth-env) berth_env+=("$2"); shift 2 ;;
        --no-build) build=false; shift ;;
        --output) output=$2; shift 2 ;;
        --rounds-without) probe_rounds=$2; shift 2 ;;
        -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
bench_name=bench-gc
source scripts/lib/bench-upstream.sh
source scripts/lib/seaweed.sh
bench_require docker-registry curl jq python3 psql
target_dir=${CARGO_TARGET_DIR:-target}
if $build; then
    log "building berth and berth-bench (release)"
    cargo build --release -p berth -p berth-bench >&2
fi
berth_bin=$target_dir/release/berth
bench_bin=$target_dir/release/berth-bench
if $s3; then
    weed_bin=${BERTH_WEED:-$(command -v weed ||
        echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed")}
    [[ -x $weed_bin ]] || { log "SeaweedFS's weed is missing (scripts/install-deps.sh), or pass --no-s3"; exit 1; }
fi
bench_workdir
databases=()
cleanup_databases() {
    local database
    for database in "${databases[@]}"; do
        psql -q "$postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap 'bench_cleanup; cleanup_databases' EXIT
password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
probe_seconds=2

wait_http() { # url pid name
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || { log "$3 exited; its log:"; tail -n 30 "$work/$3.log" >&2; exit 1; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) =~ ^(200|401)$ ]] && return 0
        sleep 0.2
    done
    log "$3 not ready after 60 s"; exit 1
}

# The images/s of each gc-probe round in FILE (stderr of berth-bench, each
# line prefixed by the time it was read), ending between FROM and TO.
rounds_between() { # file from to
    awk -v from="$2" -v to="$3" '
        /\[gc-probe\] round .* throughput/ {
            t = $1; for (i = 1; i <= NF; i++) if ($i == "throughput") v = $(i + 1)
            if (t >= from + '"$probe_seconds"' && t <= to) print v
        }' "$1"
}
mean() { awk '{s += $1; n++} END {if (n) printf "%.1f", s / n; else print "n/a"}'; }
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done; }

probe() { # target-spec rounds file
    "$bench_bin" --scenarios gc-probe --rounds "$2" --duration "$probe_seconds" --small-workers 8 \
        --target "$1" 2>&1 >/dev/null | stamp >"$3"
}

populate() { # target-spec
    "$bench_bin" --scenarios gc-populate --gc-manifests "$manifests" --gc-layers 9 \
        --populate-concurrency 16 --target "$1" >/dev/null 2>"$work/populate.log" ||
        { tail -n 20 "$work/populate.log" >&2; exit 1; }
    grep -h '\[gc-populate\] .*deleted' "$work/populate.log" >&2
}

peak_sampler() { # pid file
    while kill -0 "$1" 2>/dev/null; do
        awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true
        sleep 0.1
    done >"$2"
}

declare -A result
# measure_berth NAME ENV...: a fresh berth with ENV, filled, measured.
measure_berth() {
    local name=$1; shift
    local port; port=$(free_port)
    mkdir -p "$work/$name"
    env BERTH_ADMIN_PASSWORD="$password" BERTH_GC_INTERVAL=24h BERTH_GC_BLOB_GRACE_PERIOD=1s \
        BERTH_JOBS_POLL_INTERVAL=1s BERTH_DISABLE_REDIRECT=true "$@" ${berth_env[@]+"${berth_env[@]}"} \
        "$berth_bin" serve --data-dir "$work/$name" --addr "127.0.0.1:$port" 2>"$work/$name.log" &
    local pid=$!
    pids+=("$pid")
    wait_http "http://127.0.0.1:$port/readyz" "$pid" "$name"
    local spec="name=$name,url=http://127.0.0.1:$port,user=admin,password=$password"
    log "$name: pushing $manifests images"
    populate "$spec"
    # PostgreSQL with autovacuum on (its default) would have analyzed the
    # tables the populate filled; this machine's runs with it off (CI's
    # setting). Analyze once, so that the rounds before the collection get
    # the plans a production database would give them, not plans made for
    # empty tables.
    if [[ -n ${analyze_url:-} ]]; then psql -q "$analyze_url" -c ANALYZE; fi
    # The populate's writeback is not the collection's cost.
    sync
    sleep 2
    log "$name: throughput without a collection"
    probe "$spec" "$probe_rounds" "$work/$name-before.log"
    local rss_before; rss_before=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    peak_sampler "$pid" "$work/$name-rss" &
    local sampler=$!
    # Rounds enough for a collection of hours; stopped when it ends.
    probe "$spec" 10000 "$work/$name-during.log" &
    local prober=$!
    sleep 1
    log "$name: pruning and collecting"
    local started; started=$(now)
    local run
    run=$(curl -fsS -u "admin:$password" -H 'Content-Type: application/json' \
        -d '{"spec":{"dryRun":false}}' "http://127.0.0.1:$port/api/v1/imagepruners/cluster/prunes")
    local id; id=$(jq -r .metadata.name <<<"$run")
    while [[ $(jq -r '.status.outcome // empty' <<<"$run") == "" ]]; do
        sleep 0.2
        run=$(curl -fsS -u "admin:$password" "http://127.0.0.1:$port/api/v1/imagepruners/cluster/prunes/$id")
    done
    local ended; ended=$(now)
    pkill -f -- "gc-probe --rounds 10000 .*name=$name," 2>/dev/null || true
    wait "$prober" 2>/dev/null || true
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    [[ $(jq -r .status.outcome <<<"$run") == Succeeded ]] || { log "$name: the run failed: $run"; exit 1; }
    log "$name: throughput without a collection, again"
    probe "$spec" "$probe_rounds" "$work/$name-after.log"
    result[$name,before]=$( (rounds_between "$work/$name-before.log" 0 1e12
        rounds_between "$work/$name-after.log" 0 1e12) | mean)
    log "$name: rounds before: $(rounds_between "$work/$name-before.log" 0 1e12 | xargs)"
    log "$name: rounds during: $(rounds_between "$work/$name-during.log" "$started" "$ended" | xargs)"
    log "$name: rounds after: $(rounds_between "$work/$name-after.log" 0 1e12 | xargs)"
    result[$name,time]=$(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.1f", b - a}')
    result[$name,during]=$(rounds_between "$work/$name-during.log" "$started" "$ended" | mean)
    result[$name,rounds]=$(rounds_between "$work/$name-during.log" "$started" "$ended" | wc -l)
    result[$name,peak]=$(sort -n "$work/$name-rss" | tail -n 1 | awk '{printf "%.0f", $1 / 1024}')
    result[$name,rss_before]=$(awk -v k="$rss_before" 'BEGIN {printf "%.0f", k / 1024}')
    result[$name,blobs]=$(jq -r .status.blobsRemoved <<<"$run")
    result[$name,manifests]=$(jq -r .status.manifestsRemoved <<<"$run")
    result[$name,outage]=0
    log "$name: ${result[$name,time]} s, ${result[$name,blobs]} blobs and ${result[$name,manifests]} manifests removed"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

if $filesystem; then
    measure_berth berth-filesystem
fi

if $s3; then
    start_seaweed
    new_bucket berth-bench-gc
    database=berth_bench_gc_$(random_hex 4)
    psql -q "$postgres" -c "CREATE DATABASE $database" >/dev/null
    databases+=("$database")
    analyze_url=${postgres%/*}/$database
    measure_berth berth-seaweedfs-postgres BERTH_DATABASE_URL="${postgres%/*}/$database" \
        BERTH_STORAGE_S3_BUCKET="$bucket" BERTH_STORAGE_S3_REGION_ENDPOINT="$s3_endpoint" \
        BERTH_STORAGE_S3_ACCESS_KEY="$s3_access" BERTH_STORAGE_S3_SECRET_KEY="$s3_secret"
fi

if $reference; then
# The reference registry: the same content; its collection needs it stopped.
name=docker-registry
port=$(free_port)
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
start_registry() {
    docker-registry serve "$work/registry.yml" >"$work/$name.log" 2>&1 &
    registry_pid=$!
    pids+=("$registry_pid")
    wait_http "http://127.0.0.1:$port/v2/" "$registry_pid" "$name"
}
start_registry
spec="name=$name,url=http://127.0.0.1:$port"
log "$name: pushing $manifests images"
populate "$spec"
log "$name: throughput without a collection"
probe "$spec" "$probe_rounds" "$work/$name-before.log"
result[$name,before]=$(rounds_between "$work/$name-before.log" 0 1e12 | mean)
result[$name,rss_before]=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$registry_pid/status")
log "$name: stopped for garbage-collect --delete-untagged"
stopped=$(now)
kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true
started=$(now)
/usr/bin/time -f '%e %M' -o "$work/gc-time" \
    docker-registry garbage-collect --delete-untagged "$work/registry.yml" >"$work/gc.log" 2>&1
result[$name,time]=$(awk -v a="$started" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
result[$name,peak]=$(awk '{printf "%.0f", $2 / 1024}' "$work/gc-time")
start_registry
result[$name,outage]=$(awk -v a="$stopped" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
result[$name,blobs]=$(grep -c 'blob eligible for deletion' "$work/gc.log" || true)
result[$name,manifests]=$(grep -c 'manifest eligible for deletion' "$work/gc.log" || true)
result[$name,during]="n/a (stopped)"
result[$name,rounds]=0
log "$name: ${result[$name,time]} s, ${result[$name,blobs]} blobs and ${result[$name,manifests]} manifests removed"

fi

names=()
$filesystem && names+=(berth-filesystem)
$s3 && names+=(berth-seaweedfs-postgres)
$reference && names+=(docker-registry)
{
    echo "Garbage: $manifests images ($((manifests * 10)) blobs), every other one deleted by digest."
    echo
    printf '| |'; printf ' %s |' "${names[@]}"; echo
    printf '|---|'; printf -- '---|%.0s' "${names[@]}"; echo
    row() { printf '| %s |' "$1"; for n in "${names[@]}"; do printf ' %s |' "${result[$n,$2]}"; done; echo; }
    row "collection (s)" time
    row "write outage (s)" outage
    row "blobs removed" blobs
    row "manifests removed" manifests
    row "resident memory before (MiB)" rss_before
    row "peak resident memory while collecting (MiB)" peak
    row "push+pull+delete, images/s, without a collection (before and after)" before
    row "push+pull+delete, images/s, during the collection" during
    row "probe rounds inside the collection" rounds
} | tee ${output:+"$output"}
