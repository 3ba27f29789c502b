#!/usr/bin/env bash
# Benchmarks pull-through: an image of 4 layers of 64 MiB (random bytes,
# incompressible) in the reference registry (Debian's docker-registry, on
# loopback, plain HTTP), imported into berth with --reference-policy local.
# Every pull is `skopeo copy docker://… dir:…` (a real client, writing the
# image to disk), rounds alternating:
#
#   first pull   through berth (a fresh berth each round: nothing cached)
#                beside the same pull straight from the upstream;
#   second pull  through berth of the now cached image, beside a pull of an
#                image of the same size pushed to berth;
#   20 at once   20 concurrent first pulls through a fresh berth: the time
#                until all are done, and how often the upstream sent each
#                blob (its access log); run after all single pulls, whose
#                rounds start with the disk settled (sync).
#
# Medians and ratios are printed as a Markdown table.
#
# berth's CPU time (user + system) during each first pull is reported too.
#
# Usage: scripts/bench-pull-through.sh [--rounds N] [--no-build] [--compare BIN]
#   --rounds N       rounds of each (default 5)
#   --no-build       use target/release/berth as built
#   --compare BIN    also time the first pull through another berth binary
#                    (a fresh one, in the same rounds, after a direct pull
#                    of its own as this berth's is), for a side by side
#   --no-crowd       skip the 20 concurrent pulls
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
rounds=5
build=true
compare_bin=
crowds=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --no-build) build=false; shift ;;
        --compare) compare_bin=$2; shift 2 ;;
        --no-crowd) crowds=0; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
bench_name=bench-pull-through
source scripts/lib/bench-upstream.sh
bench_require skopeo docker-registry curl jq python3
bench_build_berth
bench_workdir
start_upstream

# push_image REGISTRY REPO TAG [CURL_AUTH...]: 4 random 64 MiB layers and a
# config, pushed whole (one PUT each), then the manifest.
push_image() {
    local registry=$1 repo=$2 tag=$3; shift 3
    local layers=() sizes=()
    for n in 1 2 3 4; do
        local file="$work/layer-$n"
        head -c $((64 << 20)) /dev/urandom >"$file"
        layers+=("$(push_blob "$registry" "$repo" "@$file" "$@")")
        sizes+=("$(stat -c %s "$file")")
        rm -f "$file"
    done
    local config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$(date -u +%FT%TZ)\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"n\":\"$RANDOM$RANDOM\"}"
    local config_digest
    config_digest=$(push_blob "$registry" "$repo" "$config" "$@")
    local manifest
    manifest=$(jq -cn --arg c "$config_digest" --argjson cs ${#config} \
        --arg l1 "${layers[0]}" --arg l2 "${layers[1]}" --arg l3 "${layers[2]}" --arg l4 "${layers[3]}" \
        --argjson s1 "${sizes[0]}" --argjson s2 "${sizes[1]}" --argjson s3 "${sizes[2]}" --argjson s4 "${sizes[3]}" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
          layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l1,size:$s1},
                  {mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l2,size:$s2},
                  {mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l3,size:$s3},
                  {mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l4,size:$s4}]}')
    curl -fsS "$@" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "$manifest" "http://$registry/v2/$repo/manifests/$tag" -o /dev/null
}
push_image "$upstream" lib/big 1
log "upstream $upstream holds lib/big:1 (4 x 64 MiB layers)"

# --- berth, fresh for each round --------------------------------------------
password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" REGISTRY_AUTH_FILE="$work/auth.json"
mkdir -p "$HOME"
berth_addr=
start_berth() { # [binary]
    local berth_bin=${1:-$berth_bin}
    [[ -n $berth_pid ]] && { kill "$berth_pid"; wait "$berth_pid" 2>/dev/null || true; }
    rm -rf "$work/berth"
    local port; port=$(free_port)
    berth_addr="127.0.0.1:$port"
    BERTH_ADMIN_PASSWORD=$password "$berth_bin" serve --data-dir "$work/berth" --addr "$berth_addr" \
        >"$work/berth.log" 2>&1 &
    berth_pid=$!
    for _ in $(seq 100); do curl -fs "http://$berth_addr/readyz" >/dev/null && break; sleep 0.1; done
    echo "$password" | "$berth_bin" login "$berth_addr" -u admin --password-stdin >/dev/null
    "$berth_bin" new-project bench >/dev/null
    "$berth_bin" import-image big:1 --from "$upstream/lib/big:1" --insecure --confirm \
        --reference-policy local -n bench >/dev/null
}

# pull SOURCE: skopeo copy to a fresh directory.
pull() {
    local into="$work/pulled-$RANDOM$RANDOM"
    skopeo copy -q --src-tls-verify=false --src-creds "admin:$password" \
        "docker://$1" "dir:$into" >/dev/null
    rm -rf "$into"
}
# berth's CPU seconds so far (user + system).
berth_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$berth_pid/stat"; }
upstream_blob_gets() { grep -c '"GET /v2/lib/big/blobs/' "$work/registry.log" || true; }

# Settles the disk between timed pulls: each pull writes 256 MiB, and the
# kernel writing it back must not land in the next one's time.
settle() { sync; sleep 1; }

# Times a first pull through the berth just started: sets pull_time and
# pull_cpu (berth's CPU seconds during it).
timed_first_pull() {
    settle
    local c t
    c=$(berth_cpu); t=$(now)
    pull "$berth_addr/bench/big:1"
    pull_time=$(elapsed "$t")
    pull_cpu=$(awk -v a="$c" -v b="$(berth_cpu)" 'BEGIN {printf "%.3f", b - a}')
}

first=(); direct=(); second=(); pushed=(); crowd=(); crowd_gets=()
first_cpu=(); other=(); other_cpu=()
for round in $(seq 1 "$rounds"); do
    if [[ -n $compare_bin ]]; then
        start_berth "$compare_bin"
        settle; pull "$upstream/lib/big:1"
        timed_first_pull; other+=("$pull_time"); other_cpu+=("$pull_cpu")
        log "round $round: first through $compare_bin ${other[-1]} s, berth CPU ${other_cpu[-1]} s"
    fi
    start_berth
    settle; t=$(now); pull "$upstream/lib/big:1"; direct+=("$(elapsed "$t")")
    timed_first_pull; first+=("$pull_time"); first_cpu+=("$pull_cpu")
    settle; t=$(now); pull "$berth_addr/bench/big:1"; second+=("$(elapsed "$t")")
    # The same size, pushed (this berth is fresh: each round pushes it).
    push_image "$berth_addr" bench/pushed 1 -u "admin:$password"
    settle; t=$(now); pull "$berth_addr/bench/pushed:1"; pushed+=("$(elapsed "$t")")
    log "round $round: direct ${direct[-1]} s, first ${first[-1]} s ($(awk -v a="${first[-1]}" -v b="${direct[-1]}" 'BEGIN {printf "%.2f", a / b}')×, berth CPU ${first_cpu[-1]} s), second ${second[-1]} s, pushed ${pushed[-1]} s"
done
# The crowds after all single pulls: 20 pulls write 5 GiB, whose writeback
# would otherwise slow the next round's single pulls.
for round in $(seq 1 "${crowds:-$rounds}"); do
    start_berth
    settle
    before=$(upstream_blob_gets)
    t=$(now)
    crowd_pids=()
    for _ in $(seq 20); do pull "$berth_addr/bench/big:1" & crowd_pids+=($!); done
    for pid in "${crowd_pids[@]}"; do wait "$pid"; done
    crowd+=("$(elapsed "$t")")
    crowd_gets+=("$(($(upstream_blob_gets) - before))")
    log "crowd $round: 20 at once ${crowd[-1]} s (${crowd_gets[-1]} upstream blob GETs for 5 blobs)"
done

d=$(median "${direct[@]}"); f=$(median "${first[@]}"); s=$(median "${second[@]}")
p=$(median "${pushed[@]}"); c=$(median "${crowd[@]}"); g=$(median "${crowd_gets[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
cat <<EOF
| 4 x 64 MiB image, \`skopeo copy docker://… dir:\` (loopback) | median | against | ratio |
|---|---|---|---|
| first pull through berth (fetched from the upstream while served) | $(printf '%.2f' "$f") s | straight from the upstream: $(printf '%.2f' "$d") s | $(ratio "$f" "$d")× |
| second pull through berth (cached) | $(printf '%.2f' "$s") s | an image pushed to berth: $(printf '%.2f' "$p") s | $(ratio "$s" "$p")× |
| berth's CPU during a first pull | $(printf '%.2f' "$(median "${first_cpu[@]}")") s | | |
EOF
if [[ ${#crowd[@]} -gt 0 ]]; then
    cat <<EOF
| 20 concurrent first pulls | $(printf '%.2f' "$c") s | upstream blob GETs for the 5 blobs: $g | $(awk -v g="$g" 'BEGIN {printf "%.1f", g / 5}') per blob |
EOF
fi
if [[ -n $compare_bin ]]; then
    o=$(median "${other[@]}")
    cat <<EOF
| first pull through $compare_bin | $(printf '%.2f' "$o") s (berth CPU $(printf '%.2f' "$(median "${other_cpu[@]}")") s) | through this berth: $(printf '%.2f' "$f") s | $(ratio "$f" "$o")× |
EOF
fi
cat <<EOF

$rounds rounds each, alternating; $(nproc) cores, $(date -u +%Y-%m-%d).
EOF
