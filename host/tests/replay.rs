//! `caisson replay` over histories recorded from real runs
//! (`scripts/record-replay-fixtures`): no server needed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/histories")
}

fn plugin(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: build the plugins first with `cargo xtask plugins`", p.display());
    p.display().to_string()
}

fn replay(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caisson")).arg("replay").args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap(), text)
}

#[test]
fn recorded_histories_replay_cleanly() {
    let (code, out) = replay(&["--plugin", &plugin("test-workflows"), fixtures().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    for (name, events) in [("small", 34), ("medium", 138), ("large", 1543), ("versioned-v1", 16), ("changed-v1", 16), ("long-history", 126)]
    {
        assert!(out.contains(&format!("ok    {}/{name}.json ({events} events)", fixtures().display())), "{name}: {out}");
    }
    assert!(out.contains("6 histories: 6 ok, 0 failed"), "{out}");
}

#[test]
fn the_same_history_many_times_replays_each_time() {
    let small = fixtures().join("small.json");
    let small = small.to_str().unwrap();
    let mut args = vec!["--plugin".to_owned(), plugin("test-workflows")];
    args.extend(std::iter::repeat_n(small.to_owned(), 25));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = replay(&args);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("25 histories: 25 ok, 0 failed"), "{out}");
}

#[test]
fn changed_code_is_caught_and_patched_code_passes() {
    let dir = fixtures();
    let (code, out) = replay(&[
        "--plugin",
        &plugin("test-workflows-v2"),
        dir.join("changed-v1.json").to_str().unwrap(),
        dir.join("versioned-v1.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let nde = out.lines().find(|l| l.starts_with("NONDETERMINISM")).unwrap_or_else(|| panic!("{out}"));
    assert!(nde.contains("changed-v1.json") && nde.contains("'echo'") && nde.contains("'upper'"), "expected and actual command: {nde}");
    assert!(out.contains("versioned-v1.json (16 events)"), "{out}");
    assert!(out.contains("2 histories: 1 ok, 1 failed"), "{out}");
}

#[test]
fn the_protobuf_form_replays_too() {
    let json = std::fs::read_to_string(fixtures().join("medium.json")).unwrap();
    let history = caisson::replay::history_from_json(&json).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("medium.binpb");
    std::fs::write(&file, prost::Message::encode_to_vec(&history)).unwrap();
    let (code, out) = replay(&["--plugin", &plugin("test-workflows"), file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(138 events)"), "{out}");
}

#[test]
fn bad_inputs_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let small = std::fs::read_to_string(fixtures().join("small.json")).unwrap();
    let cases = [
        ("truncated.json", small[..small.len() / 2].to_owned(), "invalid history JSON"),
        ("invalid.json", "{ this is not json".to_owned(), "invalid history JSON"),
        ("empty.json", r#"{"events": []}"#.to_owned(), "the history has no events"),
        ("garbage.pb", "\u{7}\u{3}nonsense bytes".to_owned(), "not a workflow history"),
    ];
    for (name, text, _) in &cases {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let (code, out) = replay(&["--plugin", &plugin("test-workflows"), dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    for (name, _, expected) in cases {
        let line = out.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(line.starts_with("ERROR") && line.contains(expected), "{name}: {line}");
    }
    assert!(out.contains("4 histories: 0 ok, 4 failed"), "{out}");

    let missing = dir.path().join("missing.json");
    let (code, out) = replay(&["--plugin", &plugin("test-workflows"), missing.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing.json: cannot read"), "{out}");

    // A history of a workflow type the plugins do not serve.
    let (code, out) = replay(&["--plugin", &plugin("hello-workflow"), fixtures().join("small.json").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("workflow type `replay-mix` is not in the plugins (they serve: hello)"), "{out}");
}
