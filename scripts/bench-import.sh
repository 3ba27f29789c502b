#!/usr/bin/env bash
# Benchmarks `berth import-image --all` of an upstream repository with 50
# tags (the reference registry, Debian's docker-registry, on loopback)
# beside what a script would do without berth: `skopeo list-tags` and one
# `skopeo inspect --raw` per tag, in sequence, against the same upstream.
# Rounds alternate (berth, skopeo, berth, skopeo, …); medians and the
# ratio are reported, with the upstream requests per tag counted in the
# upstream's own access log.
#
# Usage: scripts/bench-import.sh [--rounds N] [--tags N] [--no-build]
#   --rounds N   rounds of each (default 5)
#   --tags N     tags in the upstream repository (default 50)
#   --no-build   use target/release/berth as built
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
rounds=5
tags=50
build=true
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --tags) tags=$2; shift 2 ;;
        --no-build) build=false; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
bench_name=bench-import
source scripts/lib/bench-upstream.sh
bench_require skopeo docker-registry curl jq python3
bench_build_berth
bench_workdir
start_upstream

# One small image, under $tags tags, each manifest different (an annotation).
config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
config_digest=$(push_blob "$upstream" lib/app "$config")
layer="bench layer $(date +%s%N)"
layer_digest=$(push_blob "$upstream" lib/app "$layer")
for n in $(seq 1 "$tags"); do
    manifest=$(jq -cn --arg c "$config_digest" --argjson cs ${#config} --arg l "$layer_digest" \
        --argjson ls ${#layer} --arg n "$n" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
          layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l,size:$ls}],
          annotations:{"org.example.n":$n}}')
    curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "$manifest" "http://$upstream/v2/lib/app/manifests/1.$n" -o /dev/null
done
log "upstream $upstream holds lib/app with $tags tags"

# --- berth ----------------------------------------------------------------
berth_port=$(free_port)
password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
BERTH_ADMIN_PASSWORD=$password \
BERTH_IMAGE_POLICY_MAX_IMAGES_BULK_IMPORTED_PER_REPOSITORY=$tags \
    "$berth_bin" serve --data-dir "$work/berth" --addr "127.0.0.1:$berth_port" \
    >"$work/berth.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$berth_port/readyz" >/dev/null && break; sleep 0.1; done
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" REGISTRY_AUTH_FILE="$work/auth.json"
mkdir -p "$HOME"
echo "$password" | "$berth_bin" login "127.0.0.1:$berth_port" -u admin --password-stdin >/dev/null
"$berth_bin" new-project bench >/dev/null

upstream_requests() { grep -c '"GET /v2/\|"HEAD /v2/' "$work/registry.log" || true; }

berth_round() {
    "$berth_bin" import-image "all$1" --from "$upstream/lib/app" --all --insecure --confirm -n bench \
        >"$work/berth-import.out"
    local imported
    imported=$("$berth_bin" get is "all$1" -n bench -o json | jq '.spec.tags | length')
    [[ $imported -eq $tags ]] || { log "berth imported $imported tags, not $tags"; exit 1; }
}
skopeo_round() {
    local listed
    listed=$(skopeo list-tags --tls-verify=false "docker://$upstream/lib/app" | jq -r '.Tags[]')
    local n=0
    for tag in $listed; do
        skopeo inspect --raw --tls-verify=false "docker://$upstream/lib/app:$tag" >/dev/null
        n=$((n + 1))
    done
    [[ $n -eq $tags ]] || { log "skopeo read $n tags, not $tags"; exit 1; }
}

berth_times=(); skopeo_times=(); berth_requests=(); skopeo_requests=()
for round in $(seq 1 "$rounds"); do
    before=$(upstream_requests); start=$(now)
    berth_round "$round"
    end=$(now); after=$(upstream_requests)
    berth_times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')"); berth_requests+=("$((after - before))")
    before=$(upstream_requests); start=$(now)
    skopeo_round
    end=$(now); after=$(upstream_requests)
    skopeo_times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')"); skopeo_requests+=("$((after - before))")
    log "round $round: berth ${berth_times[-1]} s (${berth_requests[-1]} requests), skopeo ${skopeo_times[-1]} s (${skopeo_requests[-1]} requests)"
done

bt=$(median "${berth_times[@]}"); st=$(median "${skopeo_times[@]}")
br=$(median "${berth_requests[@]}"); sr=$(median "${skopeo_requests[@]}")
cat <<EOF
| $tags tags from the reference registry (loopback, plain HTTP) | median time | upstream requests | requests per tag |
|---|---|---|---|
| \`berth import-image --all\` | $(printf '%.2f' "$bt") s | $br | $(awk -v r="$br" -v t="$tags" 'BEGIN {printf "%.2f", r / t}') |
| \`skopeo list-tags\` + \`skopeo inspect --raw\` per tag | $(printf '%.2f' "$st") s | $sr | $(awk -v r="$sr" -v t="$tags" 'BEGIN {printf "%.2f", r / t}') |
| ratio (skopeo / berth) | $(awk -v s="$st" -v b="$bt" 'BEGIN {printf "%.1f", s / b}')× | | |

$rounds rounds each, alternating; $(nproc) cores, $(date -u +%Y-%m-%d).
EOF
