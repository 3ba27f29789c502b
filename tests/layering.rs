//! The dependency rule of ARCHITECTURE.md: each layer imports only from the
//! layers below it. A `crate::` path in a module's code (comments aside) to
//! a module outside its allowed set fails this test, naming the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What each layer may import, besides itself.
const RULES: &[(&str, &[&str])] = &[
    ("oci", &[]),
    ("wire", &[]),
    ("crash_points", &[]),
    ("files", &[]),
    ("duration_text", &[]),
    ("size_text", &[]),
    ("upstream", &["oci", "files"]),
    (
        "storage",
        &["oci", "crash_points", "files", "duration_text"],
    ),
    ("metadata", &["oci", "crash_points", "files"]),
    ("auth", &["metadata", "oci", "files"]),
    // The pull secrets' service (sealing, matching) is in the domain.
    (
        "admin",
        &["auth", "domain", "metadata", "oci", "wire", "files"],
    ),
    (
        "error",
        &["auth", "metadata", "storage", "oci", "size_text"],
    ),
    (
        "domain",
        &[
            "error",
            "metadata",
            "storage",
            "upstream",
            "oci",
            "crash_points",
            // Durations written by people: the `quay.expires-after` label.
            "duration_text",
            // Byte counts written for people: quota refusals.
            "size_text",
        ],
    ),
    (
        "jobs",
        &[
            "auth", "domain", "error", "metadata", "storage", "upstream", "oci",
        ],
    ),
];

fn sources(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut found = Vec::new();
    let mut pending = vec![src.join(module)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    assert!(!found.is_empty(), "no sources for module {module}");
    found
}

/// The top-level modules a file names as `crate::<module>`, outside comments.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                modules.insert(name);
            }
        }
    }
    modules
}

#[test]
fn layers_import_only_from_below() {
    let mut violations = Vec::new();
    for (layer, allowed) in RULES {
        for file in sources(layer) {
            let text = std::fs::read_to_string(&file).unwrap();
            for module in imported_modules(&text) {
                if module != *layer && !allowed.contains(&module.as_str()) {
                    violations.push(format!("{} imports crate::{module}", file.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_imports_and_ignores_comments() {
    let text = "use crate::domain::registry::Registry;\n\
                // see crate::api for why\n\
                let x = crate::oci::names::Tag::new(); // crate::cli\n";
    let found: Vec<String> = imported_modules(text).into_iter().collect();
    assert_eq!(found, ["domain", "oci"]);
}
