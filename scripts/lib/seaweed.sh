# SeaweedFS for the benchmarks that run berth on object storage
# (scripts/bench-gc.sh, scripts/bench-replicas.sh). Sourced, not run. The
# sourcing script defines log and free_port, and sets work (a scratch
# directory), weed_bin and the array pids (processes killed on exit).

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Starts `weed mini` on loopback, every port free rather than its fixed
# defaults another program may hold, with one identity of full access.
# Sets s3_access, s3_secret and s3_endpoint; defines s3_curl.
start_seaweed() {
    s3_access=bench$(random_hex 6)
    s3_secret=$(random_hex 20)
    mkdir -p "$work/seaweed/data"
    printf '{"identities": [{"name": "bench", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' \
        "$s3_access" "$s3_secret" >"$work/seaweed/s3.json"
    local ports=()
    for _ in $(seq 1 10); do ports+=("$(free_port)"); done
    (cd "$work/seaweed" && TMPDIR=$work/seaweed exec "$weed_bin" mini -dir="$work/seaweed/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -master.telemetry=false \
        -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
        -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
        -filer.localSocket="$work/seaweed/filer.sock" \
        -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.localSocket="$work/seaweed/s3.sock" -s3.config="$work/seaweed/s3.json" \
        -webdav=false -admin.ui=false -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" \
        >"$work/seaweed.log" 2>&1) &
    pids+=("$!")
    s3_endpoint=http://127.0.0.1:${ports[6]}
}

# curl signs the request (Signature V4); the body's hash is left out of
# the signature, as SeaweedFS rejects the one curl would sign.
s3_curl() {
    curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$s3_access:$s3_secret" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" || true
}

# new_bucket NAME: creates the bucket and waits until it takes writes
# (SeaweedFS grows a bucket's first volumes on its first write); sets
# bucket. Exits, with SeaweedFS's log, if it never does.
new_bucket() {
    bucket=$1
    for _ in $(seq 1 300); do
        s3_curl -X PUT "$s3_endpoint/$bucket" >/dev/null
        if [[ $(s3_curl -X PUT --data-binary probe "$s3_endpoint/$bucket/.probe") == 200 ]]; then
            s3_curl -X DELETE "$s3_endpoint/$bucket/.probe" >/dev/null
            return 0
        fi
        sleep 0.2
    done
    log "SeaweedFS: bucket $bucket takes no writes; its log:"
    tail -n 30 "$work/seaweed.log" >&2
    exit 1
}
