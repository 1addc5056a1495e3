//! Network grants: `allow_outbound` patterns checked on every `wasi:http`
//! request and every socket connection (issue: activities). Local servers
//! on 127.0.0.1 stand in for the outside world; each counts connections so
//! the test can see that refused requests never left the sandbox.

mod support;

use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Server, Worker, plugin, unique};

/// A tiny HTTP (or line) server on a free port; `respond` maps a path to a
/// raw response. Counts connections.
struct Local {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Local {
    fn start(respond: impl Fn(&str) -> String + Send + 'static) -> Local {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut stream = stream;
                let _ = stream.write_all(respond(&path).as_bytes());
            }
        });
        Local { port, hits }
    }

    /// A server that greets every connection with `line`, unasked.
    fn banner(line: &'static str) -> Local {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(line.as_bytes());
            }
        });
        Local { port, hits }
    }

    fn http(body_of: impl Fn(&str) -> (u16, Option<String>, String) + Send + 'static) -> Local {
        Local::start(move |path| {
            let (status, location, body) = body_of(path);
            let location = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
            format!("HTTP/1.1 {status} X\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        })
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn run(server: &Server, tq: &str, activity: &str, args: Json) -> Json {
    let spec = json!({
        "activity_type": activity,
        "args": args.as_array().unwrap().iter().map(Json::to_string).collect::<Vec<_>>(),
        "start_to_close_ms": 10000,
        "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 1, "non_retryable": [] },
    });
    server.execute(tq, "run-activity", &[&spec.to_string()])
}

fn ok(server: &Server, tq: &str, activity: &str, args: Json) -> Json {
    let doc = run(server, tq, activity, args.clone());
    assert_eq!(doc["status"], "COMPLETED", "{activity}({args}): {doc:#}");
    serde_json::from_str(doc["result"].as_str().unwrap()).unwrap()
}

fn refused(server: &Server, tq: &str, activity: &str, args: Json, why: &str) {
    let doc = run(server, tq, activity, args.clone());
    assert_eq!(doc["status"], "FAILED", "{activity}({args}) must be refused: {doc:#}");
    let message = doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(why), "{activity}({args}): expected `{why}` in {message}");
}

#[test]
fn outbound_requests_and_connections_follow_allow_outbound() {
    let b = Local::http(|_| (200, None, "secret from B".into()));
    let b_port = b.port;
    let a = Local::http(move |path| match path {
        "/redirect" => (302, Some(format!("http://127.0.0.1:{b_port}/secret")), String::new()),
        _ => (200, None, "hello from A".into()),
    });
    let c = Local::http(|_| (200, None, "hello from C".into()));
    let d = Local::banner("hello tcp\n");
    let e = Local::banner("forbidden tcp\n");

    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("net-activities.wasm");
    std::fs::copy(plugin("net-activities"), &wasm).unwrap();
    std::fs::write(
        dir.path().join("net-activities.toml"),
        format!("allow_outbound = [\"http://127.0.0.1:{}\", \"http://localhost:{}\", \"tcp://127.0.0.1:{}\"]\n", a.port, c.port, d.port),
    )
    .unwrap();
    let server = Server::start();
    let tq = unique("net");
    let worker = Worker::start(&server, &tq, &[&plugin("test-workflows").display().to_string(), wasm.to_str().unwrap()]);

    // Allowed: an IP literal with its port, a host name with its port.
    let r = ok(&server, &tq, "http-get", json!([format!("http://127.0.0.1:{}/", a.port)]));
    assert_eq!((r["status"].as_u64(), r["body"].as_str()), (Some(200), Some("hello from A")));
    let r = ok(&server, &tq, "http-get", json!([format!("http://localhost:{}/", c.port)]));
    assert_eq!(r["body"], "hello from C");

    // Refused: another port, a host name not listed, a raw IP literal for
    // a host allowed only by name, a host far away.
    refused(&server, &tq, "http-get", json!([format!("http://127.0.0.1:{}/", b.port)]), "HttpRequestDenied");
    refused(&server, &tq, "http-get", json!([format!("http://localhost:{}/", a.port)]), "HttpRequestDenied");
    refused(&server, &tq, "http-get", json!([format!("http://127.0.0.1:{}/", c.port)]), "HttpRequestDenied");
    refused(&server, &tq, "http-get", json!(["http://example.com/"]), "HttpRequestDenied");
    // A redirect from an allowed host to a refused one: the second request is refused.
    refused(&server, &tq, "http-fetch", json!([format!("http://127.0.0.1:{}/redirect", a.port)]), "HttpRequestDenied");
    assert_eq!(b.hits(), 0, "nothing reached the refused server");
    assert!(worker.log().contains("refused HTTP request"), "refusals are logged");

    // Sockets: only tcp patterns open raw connections.
    assert_eq!(ok(&server, &tq, "tcp-read-line", json!([format!("127.0.0.1:{}", d.port)])), json!("hello tcp"));
    refused(&server, &tq, "tcp-read-line", json!([format!("127.0.0.1:{}", e.port)]), "access-denied");
    refused(&server, &tq, "tcp-read-line", json!([format!("127.0.0.1:{}", a.port)]), "access-denied");
    assert_eq!(e.hits(), 0, "nothing reached the refused socket server");

    // A plugin with no grants reaches nothing, and may not even look names up.
    let bare_dir = tempfile::tempdir().unwrap();
    let bare = bare_dir.path().join("net-activities.wasm");
    std::fs::copy(plugin("net-activities"), &bare).unwrap();
    let bare_tq = unique("bare");
    let _bare = Worker::start(&server, &bare_tq, &[&plugin("test-workflows").display().to_string(), bare.to_str().unwrap()]);
    refused(&server, &bare_tq, "http-get", json!([format!("http://127.0.0.1:{}/", a.port)]), "HttpRequestDenied");
    refused(&server, &bare_tq, "tcp-read-line", json!([format!("127.0.0.1:{}", d.port)]), "access-denied");
    refused(&server, &bare_tq, "lookup", json!(["localhost"]), "localhost");
    // With a grant naming a host, name lookups work.
    assert_eq!(ok(&server, &tq, "lookup", json!(["localhost"]))[0], "127.0.0.1");
}

#[test]
fn a_bad_pattern_is_refused_at_load_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("net-activities.wasm");
    std::fs::copy(plugin("net-activities"), &wasm).unwrap();
    std::fs::write(dir.path().join("net-activities.toml"), "allow_outbound = [\"api.example.com\"]\n").unwrap();
    let server = Server::start();
    let mut worker = Worker::spawn(&server, &unique("bad"), &[wasm.to_str().unwrap()]);
    assert!(!worker.wait_exit(std::time::Duration::from_secs(60)).success());
    let log = worker.log();
    assert!(log.contains("net-activities") && log.contains("`api.example.com`") && log.contains("scheme://host:port"), "{log}");
}
