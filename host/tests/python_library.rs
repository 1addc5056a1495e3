//! The Python guest library (`plugins/python/caisson`) in plain CPython:
//! its unit tests (the scheduler with a test host, every test plugin
//! workflow, the conversions to the generated WIT bindings), and the
//! plain-Python tests of the projects `caisson new workflow|activity
//! python` writes. No server: these are the library's own rules.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/python")
}

/// Runs `python -m unittest ARGS` in `dir`; returns the output, asserting
/// success and that `expect_at_least` tests ran.
fn unittest(dir: &Path, args: &[&str], expect_at_least: usize) -> String {
    let out = Command::new(support::python_bin())
        .current_dir(dir)
        .args(["-m", "unittest"])
        .args(args)
        .env("PATH", format!("{}:{}", support::caisson_home().join("venv/bin").display(), std::env::var("PATH").unwrap_or_default()))
        .output()
        .expect("run python -m unittest");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python -m unittest {args:?} in {}:\n{text}", dir.display());
    let ran: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Ran ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    assert!(ran >= expect_at_least, "only {ran} tests ran (expected at least {expect_at_least}):\n{text}");
    assert!(!text.contains("skipped="), "tests were skipped (is componentize-py installed? run ./scripts/setup):\n{text}");
    text
}

#[test]
fn library_unit_tests_pass_in_plain_cpython() {
    let text = unittest(&python_dir(), &["discover", "-s", "tests", "-v"], 40);
    eprintln!("{text}");
}

#[test]
fn new_python_projects_pass_their_own_unit_tests() {
    let tmp = tempfile::tempdir().unwrap();
    for (kind, name) in [("workflow", "py-flow"), ("activity", "py-greet")] {
        let dir = tmp.path().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_caisson")).args(["new", kind, "python", name, "--dir"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "caisson new {kind} python {name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(dir.join("caisson/workflow.py").is_file(), "the library is vendored into {}", dir.display());
        let text = unittest(&dir, &["-v"], 1);
        eprintln!("{kind} {name}:\n{text}");
    }
}
