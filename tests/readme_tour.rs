//! README.md's five-minute tour, run as a newcomer runs it, so that the
//! README cannot drift from what berth does.
//!
//! What runs: the section of README.md from `## A five-minute tour` to the
//! next `## ` heading. In it, every fenced block marked ```` ```console ````
//! or ```` ```sh ```` is a block of commands:
//!
//! - in a `console` block, a line starting with `$ ` is a command (a line
//!   ending with `\` continues on the next); every other line is output,
//!   shown to the reader and not checked;
//! - in a `sh` block, every line that is not blank or a `#` comment is a
//!   command;
//! - a block whose previous non-blank line is `<!-- tour: skip -->` does not
//!   run (starting the server, which this test has already started;
//!   installing berth, which the test build has done).
//!
//! Blocks in other languages (`yaml`, …) are not commands.
//!
//! How it runs: berth is started on a fresh data directory as a newcomer
//! starts it (no `BERTH_ADMIN_PASSWORD`: berth writes
//! `berth-data/admin-password` in the working directory), on a free port;
//! `127.0.0.1:5000`, the README's address, is replaced by that port. Each
//! command runs with `bash` in that working directory, in order, with the
//! `berth` binary under test first on `PATH` and podman, buildah, skopeo
//! and the berth CLI on private storage, auth file and home directory (the
//! harness of `tests/clients/lab.rs`). Shell variables set by one command
//! (`REGISTRY=…`) are seen by the later ones. A command that exits non-zero
//! (or a pipeline any part of which does, or one that uses an unset
//! variable) fails the test with the README line it came from.
//!
//! podman, buildah, skopeo, curl, jq or bash missing fails the test when
//! `BERTH_REQUIRE_CLIENTS=1` (as in CI) and otherwise skips it loudly.
//!
//! Run alone: `cargo test --test readme_tour -- --nocapture`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use lab::{Lab, clients_present, missing_tools, run_piped, truncate};

/// Where the tour starts; it ends at the next level-2 heading.
const TOUR_HEADING: &str = "## A five-minute tour";
/// Put on its own line before a block that must not run.
const SKIP_MARK: &str = "<!-- tour: skip -->";
/// The address the README uses, replaced by the test server's.
const README_ADDRESS: &str = "127.0.0.1:5000";
/// What the tour's commands call, besides the berth binary under test.
const TOOLS: &[&str] = &[
    "bash", "podman", "buildah", "skopeo", "curl", "jq", "timeout",
];
/// Longest any one command may take.
const COMMAND_TIMEOUT_SECS: u32 = 300;

#[test]
fn readme_tour_runs() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("reading README.md");
    let blocks = tour_blocks(&readme).unwrap_or_else(|e| panic!("README.md: {e}"));
    let commands: Vec<&TourCommand> = blocks
        .iter()
        .filter(|b| !b.skipped)
        .flat_map(|b| &b.commands)
        .collect();
    // The tour pushes, inspects, copies, pulls and deletes, and uses the
    // admin verbs: if far fewer commands are found, the parsing is wrong.
    assert!(
        commands.len() >= 20,
        "only {} commands found in the tour: {commands:#?}",
        commands.len()
    );
    assert!(
        blocks
            .iter()
            .any(|b| b.skipped && b.commands.iter().any(|c| c.text.contains("serve"))),
        "the block starting the server should be marked {SKIP_MARK}"
    );

    if !clients_present("README tour", &missing_tools(TOOLS)) {
        return;
    }
    let started = Instant::now();
    let lab = Lab::with_generated_password("python3".into());
    eprintln!(
        "berth on {} (work dir {}, berth log {})",
        lab.host,
        lab.dir().display(),
        lab.berth.log_path().display()
    );
    let state = lab.write(".tour-env", b"");
    let berth_dir = Path::new(env!("CARGO_BIN_EXE_berth"))
        .parent()
        .expect("the berth binary's directory");
    let mut path = OsString::from(berth_dir);
    if let Some(inherited) = std::env::var_os("PATH") {
        path.push(":");
        path.push(inherited);
    }

    for command in commands {
        let text = command.text.replace(README_ADDRESS, &lab.host);
        // Variables the earlier commands set come in through the state
        // file; `set -a` exports every assignment so that `export -p`
        // writes them out again for the next command.
        let script = format!(
            "set -a\n. {state}\nset -euo pipefail\n{text}\nexport -p > {state}\n",
            state = shell_quote(state.to_str().expect("UTF-8 path")),
        );
        let timeout = COMMAND_TIMEOUT_SECS.to_string();
        let mut process = lab.command(
            "timeout",
            &[&timeout, "bash", "-c", &script],
            &[("PATH", path.as_os_str())],
        );
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BERTH_") {
                process.env_remove(key);
            }
        }
        let began = Instant::now();
        let output = run_piped(process, None);
        let shown = text.replace(&lab.password, "<password>");
        if !output.status.success() {
            panic!(
                "README.md line {}: `{shown}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                command.line,
                output.status,
                truncate(&String::from_utf8_lossy(&output.stdout), 6000),
                truncate(&String::from_utf8_lossy(&output.stderr), 6000),
            );
        }
        eprintln!(
            "ok [{:>5.1}s, {:>4.1}s] line {}: {shown}",
            started.elapsed().as_secs_f64(),
            began.elapsed().as_secs_f64(),
            command.line,
        );
    }
}

/// A fenced block of the tour.
#[derive(Debug, PartialEq)]
struct Block {
    /// Line (1-based) of the opening fence.
    line: usize,
    skipped: bool,
    commands: Vec<TourCommand>,
}

#[derive(Debug, PartialEq)]
struct TourCommand {
    /// Line (1-based) where the command starts.
    line: usize,
    /// The command, continuation lines joined with newlines as written.
    text: String,
}

/// The command blocks of README's tour section, in order.
fn tour_blocks(readme: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == TOUR_HEADING)
        .ok_or_else(|| format!("no {TOUR_HEADING:?} heading"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut blocks = Vec::new();
    let mut i = start + 1;
    while i < end {
        let Some(language) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let opening = i;
        let closing = lines[opening + 1..end]
            .iter()
            .position(|l| l.trim_end() == "```")
            .map(|n| opening + 1 + n)
            .ok_or_else(|| format!("line {}: the block is not closed", opening + 1))?;
        let body = &lines[opening + 1..closing];
        let prompt = match language.trim() {
            "console" => Some(Some("$ ")),
            "sh" => Some(None),
            _ => None,
        };
        if let Some(prompt) = prompt {
            let skipped = lines[start..opening]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim() == SKIP_MARK);
            blocks.push(Block {
                line: opening + 1,
                skipped,
                commands: commands_of(body, opening + 2, prompt)?,
            });
        }
        i = closing + 1;
    }
    Ok(blocks)
}

/// The commands of a block whose first line is line `first_line`: lines
/// starting with `prompt` (without it), or every line that is not blank or
/// a comment when there is no prompt. A trailing `\` continues a command.
fn commands_of(
    body: &[&str],
    first_line: usize,
    prompt: Option<&str>,
) -> Result<Vec<TourCommand>, String> {
    let mut commands = Vec::new();
    let mut lines = body.iter().enumerate();
    while let Some((n, line)) = lines.next() {
        let text = match prompt {
            Some(prompt) => match line.strip_prefix(prompt) {
                Some(text) => text,
                None => continue,
            },
            None if line.trim().is_empty() || line.trim_start().starts_with('#') => continue,
            None => line,
        };
        let mut command = text.to_owned();
        while command.ends_with('\\') {
            match lines.next() {
                Some((_, next)) => {
                    command.push('\n');
                    command.push_str(next);
                }
                None => {
                    return Err(format!(
                        "line {}: the command continues past the end of its block",
                        first_line + n
                    ));
                }
            }
        }
        commands.push(TourCommand {
            line: first_line + n,
            text: command,
        });
    }
    Ok(commands)
}

/// `text` in single quotes for bash.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn tour_blocks_are_read_as_documented() {
    let readme = "\
# title

```console
$ not in the tour
```

## A five-minute tour

<!-- tour: skip -->
```console
$ berth serve
output
```

Text.

```console
$ REGISTRY=127.0.0.1:5000
$ skopeo copy a \\
    b
output line
{\"json\": true}
```

```yaml
key: value
```

<!-- tour: skip -->

```sh
# a comment
echo one

echo two
```

## Configuration

```console
$ after the tour
```
";
    let blocks = tour_blocks(readme).unwrap();
    assert_eq!(
        blocks,
        vec![
            Block {
                line: 10,
                skipped: true,
                commands: vec![TourCommand {
                    line: 11,
                    text: "berth serve".into()
                }],
            },
            Block {
                line: 17,
                skipped: false,
                commands: vec![
                    TourCommand {
                        line: 18,
                        text: "REGISTRY=127.0.0.1:5000".into()
                    },
                    TourCommand {
                        line: 19,
                        text: "skopeo copy a \\\n    b".into()
                    },
                ],
            },
            Block {
                line: 31,
                skipped: true,
                commands: vec![
                    TourCommand {
                        line: 33,
                        text: "echo one".into()
                    },
                    TourCommand {
                        line: 35,
                        text: "echo two".into()
                    },
                ],
            },
        ]
    );
    assert!(tour_blocks("## A five-minute tour\n```console\n$ x\n").is_err());
    assert!(tour_blocks("## A five-minute tour\n```console\n$ x \\\n```\n").is_err());
    assert!(tour_blocks("no tour").is_err());
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}
