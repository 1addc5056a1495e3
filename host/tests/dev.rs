//! The README's main command: `caisson dev` with no arguments starts a dev
//! server, serves the example set of examples/dev.toml, drives each
//! example with the Temporal CLI and prints the results.

mod support;

use std::process::Command;
use support::free_port;

#[test]
fn caisson_dev_without_arguments_runs_the_example_set_to_completion() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A port of its own (the UI goes on port + 1000), so it never meets a
    // server another test started.
    let port = loop {
        let p = free_port();
        if p < 64000 && std::net::TcpListener::bind(("127.0.0.1", p + 1000)).is_ok() {
            break p;
        }
    };
    let out = Command::new(env!("CARGO_BIN_EXE_caisson"))
        .current_dir(&root)
        .args(["dev", "--address", &format!("127.0.0.1:{port}")])
        .env("PATH", format!("{}:{}", support::caisson_home().join("venv/bin").display(), std::env::var("PATH").unwrap_or_default()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let set: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("examples/dev.toml")).unwrap()).unwrap();
    let examples = set["example"].as_array().unwrap();
    for example in examples {
        let name = example["name"].as_str().unwrap();
        assert!(stdout.lines().any(|l| l.starts_with(&format!("ok   {name}  "))), "{name} did not end as expected:\n{stdout}\n{stderr}");
    }
    assert!(stdout.contains(&format!("{n} of {n} examples ended as expected", n = examples.len())), "{stdout}");
    assert!(stdout.contains("\"state\":\"paid\""), "{stdout}");
    assert!(
        stdout.contains(r#"update decide {"approver":"carol","approved":true,"comment":"enjoy"} -> {"approver":"carol","comment":"enjoy","id":"E-1","payment_id":null,"state":"approved"}"#),
        "the expense is decided by an update, whose result is printed: {stdout}"
    );
    assert!(stdout.contains("compensated: [refund-payment, release-inventory]"), "{stdout}");
    assert!(stdout.contains("\"worker\":\"temporalio-python\""), "{stdout}");
}
