//! TLS and mutual TLS against a dev server behind a TLS-terminating proxy
//! (support/tls_proxy.rs) with a throw-away CA made at test time: the
//! worker connects with the settings of its manifest, Temporal's
//! `TEMPORAL_TLS_*` variables or a `temporal.toml` profile, sends its API
//! key as a bearer token, and a TLS setup that cannot work stops it at
//! start with one line naming the setting and the cause.

mod support;
#[path = "support/tls_proxy.rs"]
mod tls_proxy;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Server, Worker, plugin, unique};
use tls_proxy::{Certificates, TlsProxy};

/// `caisson worker` serving test-workflows and test-activities, taking its
/// address from its manifest or the environment (no `--address`), and
/// none of the test's own `TEMPORAL_*` variables.
fn tls_worker(task_queue: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
    let mut command = Worker::command();
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TEMPORAL_") {
            command.env_remove(name);
        }
    }
    let (workflows, activities) = (plugin("test-workflows"), plugin("test-activities"));
    // No stray ~/.config/temporalio/temporal.toml.
    command.env("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml").envs(env.iter().copied());
    command.args(["worker", "--task-queue", task_queue]).args(args).args([&workflows, &activities]);
    Worker::spawn_command(command)
}

/// [`tls_worker`], once it polls.
fn polling_tls_worker(task_queue: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
    let worker = tls_worker(task_queue, args, env);
    worker.wait_for_log("worker polling", Duration::from_secs(120));
    worker
}

/// A TOML string for a path.
fn toml_path(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

/// Writes `text` to `dir/name`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A worker manifest with `[temporal]` `address` (and more lines) and
/// `[temporal.tls]` lines.
fn manifest(certs: &Certificates, temporal: &str, tls: &str) -> PathBuf {
    let name = format!("{}.toml", unique("worker"));
    write(certs.dir(), &name, &format!("[temporal]\n{temporal}\n\n[temporal.tls]\n{tls}\n"))
}

/// The worker serves a workflow with activities through the proxy.
fn serves(server: &Server, proxy: &TlsProxy, task_queue: &str, worker: &Worker) {
    let doc = server.execute(task_queue, "parallel", &["2"]);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}\n{}", worker.log());
    let requests = proxy.requests();
    for call in ["PollWorkflowTaskQueue", "PollActivityTaskQueue", "RespondActivityTaskCompleted"] {
        assert!(requests.iter().any(|(path, _)| path.ends_with(call)), "no {call} through the proxy: {requests:?}");
    }
}

/// The worker exits with status 2 within 30 s, its last line the one
/// `error:` line, which contains each of `expected`; returns that line.
fn fails_at_start(mut worker: Worker, expected: &[&str]) -> String {
    let started = Instant::now();
    let status = worker.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    let log = worker.log();
    assert_eq!(status.code(), Some(2), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {log}");
    let last = log.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.starts_with("error: "), "the error is the last line, on one line: {log}");
    for e in expected {
        assert!(last.contains(e), "`{e}` is not in the error line: {last}");
    }
    eprintln!("failed in {took:?}: {last}");
    last.to_owned()
}

fn ca_line(path: &Path) -> String {
    format!("server_ca_cert = {}", toml_path(path))
}

fn client_lines(cert: &Path, key: &Path) -> String {
    format!("client_cert = {}\nclient_key = {}", toml_path(cert), toml_path(key))
}

#[test]
fn trusts_the_server_ca_of_its_manifest() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, None);
    let tq = unique("tls-ca");
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &ca_line(&certs.ca));
    let worker = polling_tls_worker(&tq, &["--manifest", manifest.to_str().unwrap()], &[]);
    serves(&server, &proxy, &tq, &worker);
}

#[test]
fn mutual_tls_with_the_client_certificate_of_its_manifest() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, Some(&certs.ca));
    let tq = unique("tls-mtls");
    let tls = format!("{}\n{}\nserver_name = \"localhost\"", ca_line(&certs.ca), client_lines(&certs.client.cert, &certs.client.key));
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &tls);
    let worker = polling_tls_worker(&tq, &["--manifest", manifest.to_str().unwrap()], &[]);
    serves(&server, &proxy, &tq, &worker);
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}

#[test]
fn mutual_tls_without_a_client_certificate_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, Some(&certs.ca));
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &ca_line(&certs.ca));
    let worker = tls_worker(&unique("tls-no-client-cert"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &[&proxy.address, "client_cert", "client certificate"]);
    assert!(proxy.requests().is_empty(), "nothing was forwarded: {:?}", proxy.requests());
}

#[test]
fn mutual_tls_with_a_client_certificate_of_another_ca_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, Some(&certs.ca));
    let tls = format!("{}\n{}", ca_line(&certs.ca), client_lines(&certs.other_client.cert, &certs.other_client.key));
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &tls);
    let worker = tls_worker(&unique("tls-other-client-cert"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &[&proxy.address, "client_cert", "refused"]);
    assert!(proxy.requests().is_empty(), "nothing was forwarded: {:?}", proxy.requests());
}

#[test]
fn tls_from_temporal_environment_variables() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, Some(&certs.ca));
    let tq = unique("tls-env");
    let (ca, cert, key) = (certs.ca.to_str().unwrap(), certs.client.cert.to_str().unwrap(), certs.client.key.to_str().unwrap());
    let env = [
        ("TEMPORAL_ADDRESS", proxy.address.as_str()),
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", ca),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", cert),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", key),
        ("TEMPORAL_TLS_SERVER_NAME", "localhost"),
    ];
    let worker = polling_tls_worker(&tq, &[], &env);
    serves(&server, &proxy, &tq, &worker);
}

#[test]
fn tls_and_api_key_from_a_temporal_toml_profile() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, Some(&certs.ca));
    let tq = unique("tls-profile");
    // The default profile points nowhere: only the selected one works.
    let config = write(
        certs.dir(),
        "temporal.toml",
        &format!(
            "[profile.default]\naddress = \"127.0.0.1:1\"\n\n\
             [profile.secure]\naddress = {:?}\napi_key = \"profile-key\"\n\n\
             [profile.secure.tls]\nserver_ca_cert_path = {}\nclient_cert_path = {}\nclient_key_path = {}\n",
            proxy.address,
            toml_path(&certs.ca),
            toml_path(&certs.client.cert),
            toml_path(&certs.client.key),
        ),
    );
    let env = [("TEMPORAL_CONFIG_FILE", config.to_str().unwrap()), ("TEMPORAL_PROFILE", "secure")];
    let worker = polling_tls_worker(&tq, &[], &env);
    serves(&server, &proxy, &tq, &worker);
    let requests = proxy.requests();
    assert!(requests.iter().all(|(_, auth)| auth.as_deref() == Some("Bearer profile-key")), "{requests:?}");
}

#[test]
fn api_key_is_sent_as_a_bearer_token() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, None);
    let tq = unique("tls-api-key");
    let temporal = format!("address = {:?}\napi_key = \"secret-key\"", proxy.address);
    let manifest = manifest(&certs, &temporal, &ca_line(&certs.ca));
    let worker = polling_tls_worker(&tq, &["--manifest", manifest.to_str().unwrap()], &[]);
    serves(&server, &proxy, &tq, &worker);
    let requests = proxy.requests();
    assert!(!requests.is_empty());
    for (path, auth) in &requests {
        assert_eq!(auth.as_deref(), Some("Bearer secret-key"), "{path}: {requests:?}");
    }
}

#[test]
fn a_wrong_ca_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, None);
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &ca_line(&certs.other_ca));
    let worker = tls_worker(&unique("tls-wrong-ca"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &[&proxy.address, "server_ca_cert", "UnknownIssuer"]);
}

#[test]
fn an_expired_server_certificate_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.expired_server, None);
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &ca_line(&certs.ca));
    let worker = tls_worker(&unique("tls-expired"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &[&proxy.address, "expired"]);
}

#[test]
fn a_wrong_server_name_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, None);
    let tls = format!("{}\nserver_name = \"elsewhere.example\"", ca_line(&certs.ca));
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &tls);
    let worker = tls_worker(&unique("tls-server-name"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &[&proxy.address, "server_name", "not valid for name"]);
}

#[test]
fn a_missing_key_file_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let proxy = TlsProxy::start(&server.address, &certs.server, Some(&certs.ca));
    let missing = certs.dir().join("no-such-key.pem");
    let tls = format!("{}\n{}", ca_line(&certs.ca), client_lines(&certs.client.cert, &missing));
    let manifest = manifest(&certs, &format!("address = {:?}", proxy.address), &tls);
    let worker = tls_worker(&unique("tls-missing-key"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &["client_key", missing.to_str().unwrap(), "No such file"]);

    // The same file named by Temporal's environment variable.
    let env = [
        ("TEMPORAL_ADDRESS", proxy.address.as_str()),
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", certs.ca.to_str().unwrap()),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", certs.client.cert.to_str().unwrap()),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", missing.to_str().unwrap()),
    ];
    let worker = tls_worker(&unique("tls-missing-key-env"), &[], &env);
    fails_at_start(worker, &["TEMPORAL_TLS_CLIENT_KEY_PATH", missing.to_str().unwrap()]);
}

#[test]
fn a_plaintext_endpoint_fails_at_start() {
    let server = Server::start();
    let certs = Certificates::make();
    let manifest = manifest(&certs, &format!("address = {:?}", server.address), &ca_line(&certs.ca));
    let worker = tls_worker(&unique("tls-plaintext"), &["--manifest", manifest.to_str().unwrap()], &[]);
    fails_at_start(worker, &[&server.address, "does not speak TLS"]);
}
