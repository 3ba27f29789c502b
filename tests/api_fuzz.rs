//! The administration API fuzzed from its own OpenAPI document:
//! schemathesis (PyPI) reads `/api/v1/discovery` from the real `berth`
//! binary and sends what the document allows and what it forbids, as the
//! admin, for a bounded time, checking every answer:
//!
//! - no `5xx` (`not_a_server_error`);
//! - status codes, content types, headers and bodies as documented
//!   (`status_code_conformance`, `content_type_conformance`,
//!   `response_headers_conformance`, `response_schema_conformance`);
//! - what the document forbids (a name that breaks its pattern, `null` for
//!   a string, a missing required field) is refused with a `4xx`
//!   (`negative_data_rejection`), and unknown methods too
//!   (`unsupported_method`);
//! - created objects can be read back and deleted ones are gone
//!   (`ensure_resource_availability`, `use_after_free`).
//!
//! Left out: `positive_data_acceptance`, because some refusals depend on
//! state no schema can say (the registry is already initialized, a name is
//! taken, a group's name in the body differs from the path's), and
//! `ignored_auth`, which sends wrong credentials until the login lockout
//! answers `429` where it expects `401`.
//!
//! The fuzzer may do anything the admin may, except change or delete the
//! admin itself (`tests/fuzz/schemathesis_hooks.py`), which would lock it
//! out of the rest of the run.
//!
//! Time: `BERTH_FUZZ_SECONDS` (default 90) of generation, within a hard
//! limit of that plus four minutes. `BERTH_FUZZ_SEED` repeats a run (the
//! seed is printed). schemathesis missing fails the test when
//! `BERTH_REQUIRE_CLIENTS=1` (as in CI; scripts/install-deps.sh installs it)
//! and otherwise skips it loudly.
//!
//! Run alone: `cargo test --test api_fuzz -- --nocapture`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use lab::{Lab, clients_present, run_piped, truncate};

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,\
                      negative_data_rejection,unsupported_method,\
                      ensure_resource_availability,use_after_free";

#[test]
fn admin_api_survives_schemathesis() {
    let python = std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".into());
    let installed = Command::new(&python)
        .args(["-m", "schemathesis.cli", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if installed {
        Vec::new()
    } else {
        vec![format!("schemathesis (PyPI, for {python})")]
    };
    if !clients_present("API fuzz", &missing) {
        return;
    }
    let seconds: u32 = std::env::var("BERTH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);

    let mut lab = Lab::new(python.clone());
    let started = Instant::now();
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/schemathesis_hooks.py");
    let credentials = format!("admin:{}", lab.password);
    let max_time = seconds.to_string();
    let hard_limit = (seconds + 240).to_string();
    let discovery = format!("{}/api/v1/discovery", lab.url);
    let mut args = vec![
        hard_limit.as_str(),
        python.as_str(),
        "-m",
        "schemathesis.cli",
        "run",
        &discovery,
        "--auth",
        &credentials,
        "--checks",
        CHECKS,
        "--max-time",
        &max_time,
        "--request-timeout",
        "20",
        // One worker: the machine is small, and hypothesis' lambda
        // descriptions are not thread-safe on every Python.
        "--workers",
        "1",
        "--no-color",
    ];
    let seed = std::env::var("BERTH_FUZZ_SEED").unwrap_or_default();
    if !seed.is_empty() {
        args.extend(["--seed", &seed]);
    }
    let command: Command = lab.command(
        "timeout",
        &args,
        &[
            ("SCHEMATHESIS_HOOKS", hooks.as_os_str()),
            ("BERTH_FUZZ_USER", OsStr::new("admin")),
            ("NO_COLOR", OsStr::new("1")),
        ],
    );
    eprintln!(
        "berth on {} (log {}); schemathesis for {seconds}s",
        lab.host,
        lab.berth.log_path().display()
    );
    let output = run_piped(command, None);
    let report = String::from_utf8_lossy(&output.stdout).replace(&lab.password, "<password>");
    let errors = String::from_utf8_lossy(&output.stderr);
    std::fs::write(lab.dir().join("schemathesis.log"), report.as_bytes()).unwrap();
    eprintln!(
        "schemathesis ran {:.0}s: {}",
        started.elapsed().as_secs_f64(),
        report
            .lines()
            .rfind(|l| l.starts_with("==="))
            .unwrap_or("(no summary)")
    );
    if !output.status.success() {
        let from = report
            .find("=== FAILURES")
            .or_else(|| report.find("=== ERRORS"))
            .unwrap_or(0);
        panic!(
            "schemathesis found problems ({}):\n{}\n--- stderr ---\n{}",
            output.status,
            truncate(&report[from..], 20_000),
            truncate(&errors, 4000)
        );
    }

    // Nothing was left untested for want of access: every operation was
    // tried, and the admin was never locked out.
    let (selected, tested) = operation_counts(&report)
        .unwrap_or_else(|| panic!("no operation counts in the report:\n{report}"));
    assert!(selected >= 30, "only {selected} operations selected");
    assert_eq!(tested, selected, "operations not tested:\n{report}");
    assert!(
        !report.contains("Rate limited"),
        "the fuzzer was locked out, so most answers were 429:\n{report}"
    );
    // berth is still up, and the admin can still log in.
    lab.wait_ready();
    let me = lab.http("GET", "/api/v1/users/~", true, &[]);
    assert_eq!(me.status, 200, "{me:?}");
}

/// What the document says of request bodies, checked without the fuzzer:
/// `null` is not a string (a token named `null` is refused, not given a
/// generated name), a value of the wrong type is `422` naming the field,
/// text that is not JSON is `400`, and replacing a group's members needs
/// the members.
#[test]
fn bodies_are_refused_as_the_document_says() {
    let lab = Lab::new("python3".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: &str| {
        runtime.block_on(async {
            let response = http
                .request(method, format!("{}{path}", lab.url))
                .basic_auth("admin", Some(&lab.password))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .expect(path);
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("a JSON answer");
            (status, body)
        })
    };
    use reqwest::Method;
    let refused = |method: Method, path: &str, body: &str, status: u16, message: &str| {
        let (got, answer) = send(method.clone(), path, body);
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        assert_eq!(answer["kind"], "Status", "{answer}");
        assert_eq!(answer["code"], status, "{answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{method} {path} {body}: {answer}");
    };

    refused(
        Method::POST,
        "/api/v1/tokens",
        r#"{"metadata":{"name":null}}"#,
        422,
        "metadata.name: invalid type: null, expected a string",
    );
    refused(
        Method::POST,
        "/api/v1/tokens",
        r#"{"spec":{"expiresIn":null}}"#,
        422,
        "spec.expiresIn",
    );
    refused(
        Method::POST,
        "/api/v1/tokens",
        r#"{"metadata":{"name":7}}"#,
        422,
        "metadata.name",
    );
    refused(
        Method::POST,
        "/api/v1/users",
        r#"{"metadata":{"name":"bob"},"email":null}"#,
        422,
        "email",
    );
    refused(
        Method::POST,
        "/api/v1/users",
        r#"{"metadata":{"name":"bob"},"superUser":"yes"}"#,
        422,
        "superUser",
    );
    refused(
        Method::POST,
        "/api/v1/projects",
        r#"{"metadata":"#,
        400,
        "not valid JSON",
    );
    refused(
        Method::POST,
        "/api/v1/projects",
        r#"{"metadata":{"name":"p"}} trailing"#,
        400,
        "not valid JSON",
    );
    // An array where an object belongs, at any depth (serde alone reads
    // it as the object's fields in order), changing nothing.
    let (_, before) = send(Method::GET, "/api/v1/imagepruners/cluster", "");
    refused(
        Method::PATCH,
        "/api/v1/imagepruners/cluster",
        r#"{"metadata":{},"spec":[null,null]}"#,
        422,
        "spec: invalid type: sequence, expected struct",
    );
    refused(
        Method::PATCH,
        "/api/v1/imagepruners/cluster",
        r#"{"spec":["0 3 * * *",true]}"#,
        422,
        "spec: invalid type: sequence",
    );
    let (_, after) = send(Method::GET, "/api/v1/imagepruners/cluster", "");
    assert_eq!(before["spec"], after["spec"], "{after}");
    refused(
        Method::POST,
        "/api/v1/tokens",
        r#"{"metadata":["t"]}"#,
        422,
        "metadata: invalid type: sequence",
    );
    // Nothing was created by the refused requests.
    let (_, tokens) = send(Method::GET, "/api/v1/tokens", "");
    assert_eq!(tokens["items"], serde_json::json!([]), "{tokens}");
    let (_, users) = send(Method::GET, "/api/v1/users/bob", "");
    assert_eq!(users["code"], 404, "{users}");

    // Absent is still "the default".
    let (status, token) = send(Method::POST, "/api/v1/tokens", "");
    assert_eq!(status, 201, "{token}");
    assert!(
        token["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("admin-token-")),
        "{token}"
    );

    let (status, group) = send(
        Method::POST,
        "/api/v1/groups",
        r#"{"metadata":{"name":"devs"},"users":["alice"]}"#,
    );
    assert_eq!(status, 201, "{group}");
    refused(
        Method::PUT,
        "/api/v1/groups/devs",
        "",
        422,
        "users: required",
    );
    let (_, group) = send(Method::GET, "/api/v1/groups/devs", "");
    assert_eq!(group["users"], serde_json::json!(["alice"]), "{group}");
    let (status, group) = send(Method::PUT, "/api/v1/groups/devs", r#"{"users":[]}"#);
    assert_eq!(status, 200, "{group}");
    assert_eq!(group["users"], serde_json::json!([]), "{group}");
}

/// `Selected: 39/39` and `Tested: 39` of the summary.
fn operation_counts(report: &str) -> Option<(usize, usize)> {
    let value = |label: &str| {
        report.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(label)?;
            rest.trim().split('/').next()?.trim().parse::<usize>().ok()
        })
    };
    Some((value("Selected:")?, value("Tested:")?))
}

#[test]
fn operation_counts_are_read_from_the_summary() {
    let report = "API Operations:\n  Selected: 39/39\n  Tested: 38\n";
    assert_eq!(operation_counts(report), Some((39, 38)));
    assert_eq!(operation_counts("nothing"), None);
}
