//! `caisson check` on plugins built from `plugins/` (by `cargo xtask plugins`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins")
}

fn plugin(name: &str) -> PathBuf {
    let p = plugins_dir().join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: build the plugins first with `cargo xtask plugins`", p.display());
    p
}

fn caisson_check(paths: &[&Path], cache: &Path) -> (i32, String) {
    let out: Output =
        Command::new(env!("CARGO_BIN_EXE_caisson")).arg("check").args(paths).env("CAISSON_CACHE_DIR", cache).output().expect("run caisson");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "caisson panicked:\n{text}");
    (out.status.code().expect("exit code"), text)
}

#[test]
fn accepts_a_deterministic_workflow_and_lists_its_types() {
    let cache = tempfile::tempdir().unwrap();
    let (code, out) = caisson_check(&[&plugin("hello-workflow")], cache.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kind: workflow (inferred from its imports)"), "{out}");
    assert!(out.contains("hello: func(name: string) -> result<string, application-error>"), "{out}");
    assert!(out.contains("caisson:workflow/context@0.1.0"), "{out}");
    assert!(out.contains("determinism: ok"), "{out}");
}

#[test]
fn accepts_an_activity() {
    let cache = tempfile::tempdir().unwrap();
    let (code, out) = caisson_check(&[&plugin("greet-activity")], cache.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kind: activity"), "{out}");
    assert!(out.contains("greet: func(name: string) -> string"), "{out}");
    assert!(out.contains("caisson:activity/context@0.1.0"), "{out}");
}

#[test]
fn refuses_a_workflow_that_reads_the_clock_naming_imports_and_fix() {
    let cache = tempfile::tempdir().unwrap();
    let (code, out) = caisson_check(&[&plugin("clock-workflow")], cache.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("determinism: REFUSED"), "{out}");
    assert!(out.contains("wasi:clocks/wall-clock@"), "{out}");
    assert!(out.contains("(real time)"), "{out}");
    assert!(out.contains("wasi:clocks/monotonic-clock@"), "{out}");
    assert!(out.contains("wasi:cli/environment@"), "{out}");
    assert!(!out.contains("wasi:io/streams@0.2.6 ("), "stdio is not an offence:\n{out}");
    assert!(out.contains("wasm32-unknown-unknown"), "{out}");
    assert!(out.contains("determinism = \"virtual\""), "{out}");
    assert!(out.contains("clock-workflow.toml"), "the fix names the manifest file:\n{out}");
}

#[test]
fn virtual_mode_in_the_sidecar_manifest_accepts_the_clock_workflow() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("clock-workflow.wasm");
    std::fs::copy(plugin("clock-workflow"), &wasm).unwrap();
    std::fs::write(dir.path().join("clock-workflow.toml"), "determinism = \"virtual\"\n").unwrap();
    let (code, out) = caisson_check(&[&wasm], cache.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("virtual mode"), "{out}");
    assert!(out.contains("reads workflow time"), "{out}");
}

#[test]
fn broken_files_get_one_line_errors_naming_the_file() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(plugin("hello-workflow")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty.wasm", vec![], "the file is empty"),
        ("text.wasm", b"this is not webassembly\n".to_vec(), "not a WebAssembly file"),
        ("truncated.wasm", good[..good.len() / 2].to_vec(), "not a valid component"),
        ("core.wasm", b"\0asm\x01\0\0\0".to_vec(), "a core WebAssembly module, not a component"),
        ("bad-manifest.wasm", good.clone(), "allow_everything"),
    ];
    std::fs::write(dir.path().join("bad-manifest.toml"), "allow_everything = true\n").unwrap();
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, out) = caisson_check(&[&path], cache.path());
        assert_eq!(code, 2, "{name}: {out}");
        let error_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{name}: {out}");
        assert!(error_lines[0].contains(name.trim_end_matches(".wasm")), "{name}: {out}");
        assert!(error_lines[0].contains(expected), "{name}: {out}");
    }
    let missing = dir.path().join("missing.wasm");
    let (code, out) = caisson_check(&[&missing], cache.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing.wasm: cannot read"), "{out}");
}

#[test]
fn one_bad_file_does_not_hide_the_good_ones() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let (code, out) = caisson_check(&[&plugin("hello-workflow"), &junk, &plugin("greet-activity")], cache.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("hello: func") && out.contains("greet: func") && out.contains("junk.wasm"), "{out}");
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let js = plugin("greet-js");
    let size_mb = std::fs::metadata(&js).unwrap().len() as f64 / 1e6;
    let t = Instant::now();
    let (code, first) = caisson_check(&[&js], cache.path());
    let cold = t.elapsed();
    assert_eq!(code, 0, "{first}");
    assert!(first.contains(", compiled in"), "{first}");
    let t = Instant::now();
    let (code, second) = caisson_check(&[&js], cache.path());
    let warm = t.elapsed();
    assert_eq!(code, 0, "{second}");
    assert!(second.contains("loaded from the compile cache"), "{second}");
    eprintln!("caisson check of greet-js.wasm ({size_mb:.1} MB): first {:.2}s, second {:.3}s", cold.as_secs_f64(), warm.as_secs_f64());
    assert!(warm.as_secs_f64() < 1.0, "second check took {warm:?}");
    assert!(warm < cold, "cache hit ({warm:?}) not faster than compile ({cold:?})");
}
