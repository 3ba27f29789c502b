"""Drives the `oras` Python library (PyPI package `oras`) against berth.

Run by tests/clients.rs as `python3 oras_client.py JOB.json`. The job file
says what to do; the result is printed to stdout as one JSON object so that
the Rust test makes every assertion. Anything unexpected raises, which exits
non-zero with a traceback on stderr.

Job keys:
  host            "127.0.0.1:PORT" (plain HTTP)
  username, password
  config_path     docker-style auth file that `login` writes
  workdir         a directory for downloads
  artifact        {"target", "file", "file_media_type", "config", "config_media_type",
                   "annotations"}: pushed with `push`, read back with
                   `get_manifest` and `pull`
  attach          (optional) {"target", "file", "config", "config_media_type", "subject":
                   {"mediaType", "digest", "size"}}: pushed with `push(subject=...)`
  attach_typed    (optional) {"target", "file", "file_media_type", "artifact_type",
                   "subject"}: an OCI 1.1 artifact manifest with an explicit
                   `artifactType` and the empty config, put together from
                   `upload_blob` and `upload_manifest` (`push` cannot set
                   `artifactType`)
  token_flow      (optional) {"target", "file", "file_media_type"}: pushed and pulled by
                   a second client with oras-py's default auth backend
                   ("token"), which gets a bearer token from berth's token
                   service for each scope a challenge names

Quirks of oras-py handled here (seen with 0.2.43):
  * The default auth backend ("token") asks for a token for the scope of
    the first challenge (a pull, for the HEAD that checks whether a blob
    exists) and keeps it. When a request is then refused for lack of scope,
    it re-sends the same token, and asks the token service again only if
    that answers 403 (it gives up on 401); berth answers a bearer token
    lacking a scope its holder may have with 403 and
    `error="insufficient_scope"` (RFC 6750, section 3.1). The "basic"
    backend answers every 401 with the Basic credentials, which berth
    accepts on all /v2/ endpoints; both are run.
  * `login()` does not contact the registry at all: it only stores the
    credentials (in `config_path`) and sets them on the client. It takes
    no `insecure` argument; `insecure=True` belongs to the constructor.
  * Failed requests are retried five times with sleeps of 3, 5, 11, 29 and
    83 seconds; the sleeps are shortened so that a failure is reported fast.
  * `Subject.from_manifest` hashes `json.dumps(manifest)`, not the bytes the
    registry holds, so the subject descriptor is passed in explicitly.
  * Files outside the working directory are refused unless
    `disable_path_validation=True`.
"""

import hashlib
import json
import os
import sys
import time
import types

import oras.client
import oras.decorator
import oras.defaults
import oras.oci

# Shorten the retry back-off (see above) without touching the global `time`.
_real_sleep = time.sleep
oras.decorator.time = types.SimpleNamespace(sleep=lambda s: _real_sleep(min(s, 0.2)))

EMPTY_CONFIG_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"


def sha256_file(path):
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


def response_info(response):
    return {
        "status": response.status_code,
        "digest": response.headers.get("Docker-Content-Digest"),
        "location": response.headers.get("Location"),
        "body": response.text[:2000],
    }


def subject_of(spec):
    return oras.oci.Subject(
        mediaType=spec["mediaType"], digest=spec["digest"], size=int(spec["size"])
    )


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    host = job["host"]
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    result = {"oras_version": oras.__version__ if hasattr(oras, "__version__") else None}

    login = client.login(
        username=job["username"],
        password=job["password"],
        hostname=host,
        config_path=job["config_path"],
    )
    result["login"] = login

    push_and_pull(client, job, result)
    if "attach" in job:
        attach(client, job["attach"], result)
    if "attach_typed" in job:
        attach_typed(client, job, result)
    if "token_flow" in job:
        token_flow(host, job, result)
    json.dump(result, sys.stdout)


def push_and_pull(client, job, result):
    art = job["artifact"]
    pushed = client.push(
        target=art["target"],
        files=[f'{art["file"]}:{art["file_media_type"]}'],
        manifest_config=f'{art["config"]}:{art["config_media_type"]}',
        manifest_annotations=art.get("annotations") or None,
        disable_path_validation=True,
        quiet=True,
    )
    result["push"] = response_info(pushed)
    result["manifest"] = client.get_manifest(art["target"])
    outdir = os.path.join(job["workdir"], "pulled")
    files = client.pull(target=art["target"], outdir=outdir)
    result["pulled"] = [
        {"path": p, "digest": sha256_file(p), "size": os.path.getsize(p)} for p in files
    ]


def attach(client, att, result):
    attached = client.push(
        target=att["target"],
        files=[att["file"]],
        manifest_config=f'{att["config"]}:{att["config_media_type"]}',
        subject=subject_of(att["subject"]),
        disable_path_validation=True,
        quiet=True,
    )
    result["attach"] = response_info(attached)
    result["attach_manifest"] = client.get_manifest(att["target"])


def attach_typed(client, job, result):
    typed = job["attach_typed"]
    container = client.get_container(typed["target"])
    empty = os.path.join(job["workdir"], "empty.json")
    with open(empty, "w") as f:
        f.write("{}")
    config = {
        "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
        "digest": oras.defaults.blank_config_hash,
        "size": 2,
    }
    layer = oras.oci.NewLayer(typed["file"], media_type=typed["file_media_type"])
    layer["annotations"] = {
        oras.defaults.annotation_title: os.path.basename(typed["file"])
    }
    for path, descriptor in ((empty, config), (typed["file"], layer)):
        r = client.upload_blob(path, container, descriptor)
        if r.status_code != 201:
            raise RuntimeError(f"blob upload of {path}: {response_info(r)}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": oras.defaults.default_manifest_media_type,
        "artifactType": typed["artifact_type"],
        "config": config,
        "layers": [layer],
        "subject": typed["subject"],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    result["attach_typed"] = response_info(client.upload_manifest(manifest, container))
    result["attach_typed_manifest"] = client.get_manifest(typed["target"])


def token_flow(host, job, result):
    flow = job["token_flow"]
    token_client = oras.client.OrasClient(hostname=host, insecure=True)
    token_client.login(
        username=job["username"],
        password=job["password"],
        hostname=host,
        config_path=job["config_path"],
    )
    pushed = token_client.push(
        target=flow["target"],
        files=[f'{flow["file"]}:{flow["file_media_type"]}'],
        disable_path_validation=True,
        quiet=True,
    )
    token_outdir = os.path.join(job["workdir"], "pulled-with-tokens")
    files = token_client.pull(target=flow["target"], outdir=token_outdir)
    result["token_flow"] = {
        "backend": type(token_client.auth).__name__,
        "push": response_info(pushed),
        "pulled": [
            {"path": p, "digest": sha256_file(p), "size": os.path.getsize(p)}
            for p in files
        ],
    }


if __name__ == "__main__":
    main()
