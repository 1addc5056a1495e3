//! Writing a plugin outside the repository: `caisson new` into a temporary
//! folder (outside the checkout), `caisson build`, `caisson check`, then a
//! run on a dev server driven by the Temporal CLI. Also: the WIT copies
//! vendored in the repository equal the host's `wit/`.

mod support;

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use support::{Server, Worker, plugin, unique};

fn caisson() -> Command {
    Command::new(env!("CARGO_BIN_EXE_caisson"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A temporary folder that is not inside the checkout.
fn outside_checkout() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("caisson-authoring-").tempdir_in(std::env::temp_dir()).unwrap();
    assert!(!dir.path().starts_with(repo()), "{} is inside the checkout", dir.path().display());
    dir
}

/// `caisson new KIND LANG NAME --dir PARENT/NAME`, then `caisson build`
/// (which prints the check verdict), then `caisson check` on the result.
/// Returns the project's build folder.
fn new_and_build(parent: &Path, kind: &str, lang: &str, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let out = caisson().args(["new", kind, lang, name, "--dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "caisson new {kind} {lang} {name}: {}", String::from_utf8_lossy(&out.stderr));
    for file in ["wit/world.wit", "caisson.toml", "README.md"] {
        assert!(dir.join(file).is_file(), "{name}: no {file}");
    }
    // Nothing in the project points back into a Caisson checkout.
    let mut stack = vec![dir.clone()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            assert!(!text.contains("../../"), "{} refers outside the project", p.display());
        }
    }
    let started = Instant::now();
    // Rust guests' dependencies (wit-bindgen, serde) compile once per
    // test target folder, not once per fresh project: a user's cargo keeps
    // them too, and the 300 s test limit is for the build, not for them.
    let guests = Path::new(env!("CARGO_TARGET_TMPDIR")).join("authoring-guests");
    let out = caisson().arg("build").arg(&dir).env("CAISSON_GUEST_TARGET_DIR", guests).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "caisson build {name}: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{lang} {kind} {name}: caisson build took {:.1}s", started.elapsed().as_secs_f64());
    // A typed export (`name: func(...)`) or a type the plugin declares
    // at load (Python: `name (declared, run through `dynamic` ...)`).
    assert!(
        report.contains(&format!("{name}: func(")) || report.contains(&format!("{name} (declared")),
        "{name}: the build report lists no `{name}` type:\n{report}"
    );
    assert!(report.contains(&format!("kind: {kind}")), "{report}");
    let wasm = dir.join("build").join(format!("{name}.wasm"));
    let out = caisson().arg("check").arg(&wasm).output().unwrap();
    assert!(out.status.success(), "caisson check {}: {}", wasm.display(), String::from_utf8_lossy(&out.stdout));
    dir.join("build")
}

/// The result of a workflow run, decoded.
fn completed(doc: &Json) -> Json {
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    match &doc["result"] {
        Json::String(s) => serde_json::from_str(s).unwrap_or(Json::String(s.clone())),
        other => other.clone(),
    }
}

/// Runs one activity through the test workflows' `run-activity`.
fn run_activity(server: &Server, tq: &str, activity: &str, args: &[Json]) -> Json {
    let spec = json!({
        "activity_type": activity,
        "args": args.iter().map(Json::to_string).collect::<Vec<_>>(),
        "start_to_close_ms": 60000,
        "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 1, "non_retryable": [] },
    });
    completed(&server.execute(tq, "run-activity", &[&spec.to_string()]))
}

fn worker_args(dirs: &[&Path]) -> Vec<String> {
    let mut args: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    args.push(plugin("test-workflows").display().to_string());
    args
}

#[test]
fn rust_and_c_plugins_from_new_to_a_run() {
    let tmp = outside_checkout();
    let greet = new_and_build(tmp.path(), "activity", "rust", "greet");
    let flow = new_and_build(tmp.path(), "workflow", "rust", "hello-flow");
    let c = new_and_build(tmp.path(), "activity", "c", "c-greet");

    let server = Server::start();
    let tq = unique("authoring-rust");
    let mut args = worker_args(&[&greet, &flow, &c]);
    // The repository's C example (plugins/c/checksum), built by `cargo xtask plugins`.
    args.push(plugin("checksum").display().to_string());
    let _worker = Worker::start(&server, &tq, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let result = completed(&server.execute(&tq, "hello-flow", &[r#"{"name": "Ada"}"#]));
    assert_eq!(result, "Hello, Ada! (from hello-flow)");
    assert_eq!(run_activity(&server, &tq, "c-greet", &[json!("Ada")]), "Hello, Ada!");
    assert_eq!(run_activity(&server, &tq, "crc32", &[json!("hello world")]), 0x0d4a_1185);
    assert_eq!(run_activity(&server, &tq, "word-count", &[json!("  one two\tthree\n")]), 3);
}

#[test]
fn javascript_plugins_from_new_to_a_run() {
    let tmp = outside_checkout();
    let flow = new_and_build(tmp.path(), "workflow", "javascript", "js-flow");
    let js = new_and_build(tmp.path(), "activity", "javascript", "js-greet");

    let server = Server::start();
    let tq = unique("authoring-js");
    // The in-repo `greet` activity answers the JS workflow's `greet` call.
    let mut args = worker_args(&[&flow, &js]);
    args.push(plugin("greet-activity").display().to_string());
    let _worker = Worker::start(&server, &tq, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let result = completed(&server.execute(&tq, "js-flow", &[r#"{"name": "Ada"}"#]));
    assert_eq!(result, "Hello, Ada! (from js-flow)");
    assert_eq!(run_activity(&server, &tq, "js-greet", &[json!("Ada")]), "Hello, Ada!");
}

#[test]
fn python_plugins_from_new_to_a_run() {
    let tmp = outside_checkout();
    let py = new_and_build(tmp.path(), "activity", "python", "py-greet");
    let py_flow = new_and_build(tmp.path(), "workflow", "python", "py-flow");

    let server = Server::start();
    let tq = unique("authoring-py");
    let mut args = worker_args(&[&py, &py_flow]);
    args.push(plugin("greet-activity").display().to_string());
    let worker = Worker::start(&server, &tq, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run_activity(&server, &tq, "py-greet", &[json!("Ada")]), "Hello, Ada!");
    // The Python workflow (SDK-shaped, from `caisson new workflow python`) calls `greet`.
    let result = completed(&server.execute(&tq, "py-flow", &[r#"{"name": "Ada"}"#]));
    assert_eq!(result, "Hello, Ada! (from py-flow)");
    assert!(worker.log().contains("greeting Ada"), "the activities log through the context:\n{}", worker.log());
}

/// `caisson new workflow typescript`: a project on caisson-workflow (the
/// `@temporalio/workflow` API) that builds outside the checkout (the
/// `typescript` and componentize-js packages come from the checkout's
/// setup, as they would from the project's `npm install`), whose plain
/// code passes its `node --test`, and whose workflow `tsFlow` (the
/// function's name) runs on a dev server.
#[test]
fn typescript_workflow_from_new_to_a_run() {
    let tmp = outside_checkout();
    let dir = tmp.path().join("ts-flow");
    let out = caisson().args(["new", "workflow", "typescript", "ts-flow", "--dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "caisson new workflow typescript: {}", String::from_utf8_lossy(&out.stderr));
    for file in [
        "index.ts",
        "shout.ts",
        "shout.test.ts",
        "tsconfig.json",
        "package.json",
        "wit/world.wit",
        "caisson.toml",
        "caisson-workflow/index.js",
        "caisson-workflow/index.d.ts",
    ] {
        assert!(dir.join(file).is_file(), "ts-flow: no {file}");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("--execute tsFlow"), "the README runs the workflow by its function's name: {readme}");
    let out = caisson().arg("build").arg(&dir).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "caisson build ts-flow: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("kind: workflow"), "{report}");
    let wasm = dir.join("build/ts-flow.wasm");
    assert!(wasm.is_file() && dir.join("build/ts-flow.toml").is_file());

    // The plain code's test: compiled by tsc (type errors of a project
    // without @types/node installed are not the point here), run by node.
    let tsc = repo().join("plugins/js/node_modules/typescript/bin/tsc");
    let out = Command::new("node").arg(&tsc).args(["-p", "."]).arg("--noCheck").current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "tsc: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let out = Command::new("node").args(["--test", "build/test/shout.test.js"]).current_dir(&dir).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && printed.contains("# pass 1"), "node --test: {printed}{}", String::from_utf8_lossy(&out.stderr));

    let server = Server::start();
    let tq = unique("authoring-ts");
    let greet = plugin("greet-activity").display().to_string();
    let _worker = Worker::start(&server, &tq, &[&dir.join("build").display().to_string(), &greet]);
    let id = unique("ts-flow");
    let result = completed(&server.execute_id(&tq, "tsFlow", &id, &[r#"{"name": "Ada"}"#]));
    assert_eq!(result, "Hello, Ada! (from ts-flow)");
    let out = server.temporal(&["workflow", "query", "--workflow-id", &id, "--name", "stage"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("done"), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn new_says_what_is_not_available_and_refuses_bad_names_and_full_folders() {
    let tmp = outside_checkout();
    let out = caisson().args(["new", "workflow", "c", "flow", "--dir"]).arg(tmp.path().join("flow")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("C workflows are not supported"), "{err}");
    let out = caisson().args(["new", "activity", "rust", "Bad_Name", "--dir"]).arg(tmp.path().join("x")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("plugin name `Bad_Name`"), "{err}");
    std::fs::write(tmp.path().join("keep.txt"), "mine").unwrap();
    let out = caisson().args(["new", "activity", "rust", "greet", "--dir"]).arg(tmp.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not empty"), "{err}");
}

#[test]
fn caisson_wit_writes_the_host_packages() {
    let tmp = outside_checkout();
    let out = caisson().args(["wit", "--dir"]).arg(tmp.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for package in ["workflow", "activity"] {
        assert_eq!(files(&tmp.path().join(format!("caisson-{package}"))), files(&repo().join("wit").join(package)));
    }
}

/// Every vendored copy of the host's WIT (the Rust guest crate's own `wit/`
/// and the plugins' `wit/deps/caisson-*`) equals `wit/`: fix with
/// `scripts/sync-wit`.
#[test]
fn vendored_wit_copies_equal_the_host_wit() {
    let root = repo();
    let mut copies = Vec::new();
    for package in ["workflow", "activity"] {
        copies.push((package, root.join("plugins/rust/caisson-guest/wit").join(package)));
    }
    let mut stack = vec![root.join("plugins"), root.join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_dir() || path.ends_with("node_modules") || path.ends_with("target") {
                continue;
            }
            if path.parent().is_some_and(|p| p.ends_with("wit/deps")) {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if let Some(package) = name.strip_prefix("caisson-") {
                    copies.push((if package == "workflow" { "workflow" } else { "activity" }, path.clone()));
                }
            }
            stack.push(path);
        }
    }
    assert!(copies.len() > 2, "no plugin vendors wit/deps");
    for (package, copy) in copies {
        assert_eq!(
            files(&copy),
            files(&root.join("wit").join(package)),
            "{} differs from wit/{package}: run scripts/sync-wit",
            copy.display()
        );
    }
}

/// (file name, contents) of the `.wit` files in `dir`, sorted.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}
