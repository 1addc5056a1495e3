//! Payload codecs (issue 16, item 3): the aes-gcm-codec component with a
//! Python SDK client and worker that use the encryption sample's codec,
//! on a real dev server; `caisson codec-server` for the CLI; and the
//! refusals at start.

mod support;

use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;
use support::{Script, Server, Worker, first_json, plugin, python_client_in, unique};

/// The sample's key and key id.
const KEY: &str = "test-key-test-key-test-key-test!";
const KEY_ID: &str = "test-key-id";
/// The input whose plaintext must never reach the server.
const SECRET: &str = "secret-input-xyzzy";

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

/// A manifest in `dir` whose `[codec]` is the built aes-gcm-codec with
/// `extra` lines added to the table.
fn codec_manifest(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("caisson.toml");
    let text = format!(
        "[codec]\npath = {:?}\nsecrets = [\"CAISSON_CODEC_KEY\"]\nenv = {{ CODEC_KEY_ID = \"{KEY_ID}\" }}\n{extra}",
        plugin("aes-gcm-codec").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `caisson worker` with `manifest` (its `[codec]`), the test workflows
/// and activities, and the sample's key in its environment.
fn codec_worker(server: &Server, task_queue: &str, manifest: &Path) -> Worker {
    let manifest = manifest.to_str().unwrap();
    Worker::start_with_env(
        server,
        task_queue,
        &["--manifest", manifest, &p("test-workflows"), &p("test-activities")],
        &[("CAISSON_CODEC_KEY", KEY)],
    )
}

/// Every payload (an object with `metadata` and `data`) in a JSON
/// document, with its path.
fn payloads<'a>(doc: &'a Json, path: String, out: &mut Vec<(String, &'a Json)>) {
    match doc {
        Json::Object(map) => {
            if map.contains_key("metadata") && map.contains_key("data") {
                out.push((path.clone(), doc));
            }
            for (k, v) in map {
                payloads(v, format!("{path}.{k}"), out);
            }
        }
        Json::Array(items) => items.iter().enumerate().for_each(|(i, v)| payloads(v, format!("{path}[{i}]"), out)),
        _ => {}
    }
}

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
}

fn encoding(payload: &Json) -> String {
    String::from_utf8_lossy(&b64(payload["metadata"]["encoding"].as_str().unwrap_or_default())).into_owned()
}

/// `caisson codec-server` with `args`, killed on drop.
struct CodecServer {
    child: Child,
    url: String,
}

impl CodecServer {
    fn start(manifest: &Path, args: &[&str], env: &[(&str, &str)]) -> CodecServer {
        let mut child = Worker::command()
            .args(["codec-server", "--manifest"])
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start caisson codec-server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("codec-server did not start: {line:?}")).to_owned();
        CodecServer { child, url }
    }
}

impl Drop for CodecServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request: status, headers (lowercase names), body.
fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<(String, String)>, String) {
    let authority = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Runs the Python client `script` (with `encryption_codec` importable).
fn python(script: &str, args: &[&str]) -> String {
    let out = python_client_in(Some(&support_dir()), script, args);
    let printed = support::printed(&out);
    assert!(out.status.success(), "python client failed:\n{printed}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_python_client_with_the_encryption_codec_runs_a_caisson_workflow_whose_history_holds_only_ciphertext() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = codec_manifest(dir.path(), "");
    let (tq, py_tq) = (unique("codec"), unique("codec-py"));
    let key = [("CAISSON_CODEC_KEY", KEY)];
    let worker = codec_worker(&server, &tq, &manifest);
    assert!(worker.log().contains("payload codec"), "{}", worker.log());
    let _py = Script::start(&support_dir().join("py_codec_worker.py"), &[&server.address, &py_tq]);

    // The Python SDK client, encrypting with the sample's codec.
    let id = unique("two-queues");
    let script = r#"
import asyncio, json, sys
from temporalio.client import Client
from encryption_codec import converter

async def main(address, task_queue, wid, value, other_queue):
    client = await Client.connect(address, data_converter=converter())
    print(json.dumps(await client.execute_workflow("two-queues", args=[value, other_queue], id=wid, task_queue=task_queue)))

asyncio.run(main(*sys.argv[1:]))
"#;
    let result: Json = serde_json::from_str(&python(script, &[&server.address, &tq, &id, SECRET, &py_tq])).unwrap();
    let upper = SECRET.to_uppercase();
    assert_eq!(result, json!(format!("{upper}|{upper}!|{upper}")), "activity on Caisson, activity on Python, child on Caisson");

    // What the server stores: only ciphertext, for the workflow and its child.
    for wid in [id.clone(), format!("{id}-child")] {
        let out = server.temporal(&["workflow", "show", "-o", "json", "--workflow-id", &wid]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}", support::printed(&out));
        let doc: Json = first_json(&out);
        let mut found = Vec::new();
        payloads(&doc, String::new(), &mut found);
        assert!(found.len() >= 2, "{wid}: inputs and results are in the history: {doc:#}");
        for (path, payload) in &found {
            assert_eq!(encoding(payload), "binary/encrypted", "{wid} {path}: {payload}");
            assert_eq!(b64(payload["metadata"]["encryption-key-id"].as_str().unwrap_or_default()), KEY_ID.as_bytes(), "{path}");
            let data = String::from_utf8_lossy(&b64(payload["data"].as_str().unwrap_or_default())).to_ascii_lowercase();
            assert!(!data.contains("xyzzy"), "{wid} {path}: plaintext in {data}");
        }
        assert!(!text.to_ascii_lowercase().contains("xyzzy"), "{wid}: plaintext in the history:\n{text}");
    }

    // Through `caisson codec-server`, the CLI shows the plaintext.
    let codec_server = CodecServer::start(&manifest, &["--require-token", "CODEC_TOKEN"], &[key[0], ("CODEC_TOKEN", "s3cret")]);
    let show = ["workflow", "show", "-o", "json", "--workflow-id", &id, "--codec-endpoint", &codec_server.url];
    let out = server.temporal(&[&show[..], &["--codec-auth", "Bearer s3cret"]].concat());
    assert!(out.status.success(), "{}", support::printed(&out));
    let doc = first_json(&out);
    let mut found = Vec::new();
    payloads(&doc, String::new(), &mut found);
    let plain: Vec<String> = found
        .iter()
        .filter(|(_, p)| encoding(p) == "json/plain")
        .map(|(_, p)| String::from_utf8_lossy(&b64(p["data"].as_str().unwrap_or_default())).into_owned())
        .collect();
    assert!(plain.iter().any(|d| d.contains(SECRET)), "the input in plaintext: {plain:?}\n{doc:#}");
    assert!(plain.iter().any(|d| d.contains(&format!("{upper}|{upper}!|{upper}"))), "the result in plaintext: {plain:?}");
    assert!(found.iter().all(|(_, p)| encoding(p) != "binary/encrypted"), "everything decoded: {doc:#}");

    // The encrypted history replays through the same codec (and not without it).
    let history = dir.path().join(format!("{id}.json"));
    std::fs::write(&history, server.temporal(&["workflow", "show", "-o", "json", "--workflow-id", &id]).stdout).unwrap();
    let replay = |with_codec: bool| {
        let mut command = Worker::command();
        command.env_remove("CAISSON_CODEC_KEY").envs(key).args(["replay", "-p", &p("test-workflows")]).arg(&history);
        if with_codec {
            command.arg("--manifest").arg(&manifest);
        }
        let out = command.output().unwrap();
        (out.status.success(), support::printed(&out))
    };
    let (ok, printed) = replay(true);
    assert!(ok && printed.contains("1 histories: 1 ok, 0 failed"), "{printed}");
    let (ok, printed) = replay(false);
    assert!(!ok && printed.contains("binary/encrypted"), "without the codec the payloads cannot be read: {printed}");
}

#[test]
fn a_codec_that_traps_or_miscounts_fails_the_workflow_task_naming_it_and_the_worker_goes_on() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    for (fault, needle) in [("trap", "panicked"), ("count", "returned 0 payload(s) for 1")] {
        let faulty = plugin("faulty-codec").display().to_string();
        let manifest = dir.path().join(format!("{fault}.toml"));
        std::fs::write(
            &manifest,
            format!(
                "[codec]\npath = {faulty:?}\nsecrets = [\"CAISSON_CODEC_KEY\"]\nenv = {{ CODEC_KEY_ID = \"{KEY_ID}\", CODEC_FAULT = \"{fault}\" }}\n"
            ),
        )
        .unwrap();
        let tq = unique(fault);
        let worker = codec_worker(&server, &tq, &manifest);
        for round in 0..2 {
            let id = unique(&format!("{fault}-{round}"));
            server.start_workflow(&tq, "child-upper", &id, &["\"x\""]);
            let message = server.task_failure(&id, Duration::from_secs(60));
            assert!(message.contains("faulty-codec.wasm: decode failed") && message.contains(needle), "{fault}: {message}");
        }
        assert!(worker.log().matches("workflow task failed: codec").count() >= 2, "served both: {}", worker.log());
    }
}

#[test]
fn a_payload_of_another_key_id_fails_the_workflow_task_naming_the_key_id_and_the_worker_goes_on() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = codec_manifest(dir.path(), "");
    let tq = unique("codec-key");
    let _worker = codec_worker(&server, &tq, &manifest);
    let id = unique("other-key");
    let script = r#"
import asyncio, sys
from temporalio.client import Client
from encryption_codec import converter

async def main(address, task_queue, wid):
    client = await Client.connect(address, data_converter=converter(key_id="other-key-id"))
    await client.start_workflow("child-upper", "hello", id=wid, task_queue=task_queue)

asyncio.run(main(*sys.argv[1:]))
"#;
    python(script, &[&server.address, &tq, &id]);
    let message = server.task_failure(&id, Duration::from_secs(60));
    assert!(message.contains("Unrecognized key ID other-key-id"), "{message}");
    assert!(message.contains("aes-gcm-codec.wasm") && message.contains("decode failed"), "names the codec: {message}");

    // The worker goes on: a plaintext start (the codec passes what it did
    // not encode) and an encrypted one both complete.
    let doc = server.execute(&tq, "child-upper", &["\"plain\""]);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    let script = r#"
import asyncio, json, sys
from temporalio.client import Client
from encryption_codec import converter

async def main(address, task_queue, wid):
    client = await Client.connect(address, data_converter=converter())
    print(json.dumps(await client.execute_workflow("child-upper", "fine", id=wid, task_queue=task_queue)))

asyncio.run(main(*sys.argv[1:]))
"#;
    assert_eq!(python(script, &[&server.address, &tq, &unique("good-key")]), "\"FINE\"");
}

#[test]
fn the_codec_server_decodes_what_python_encodes_and_python_decodes_what_it_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = codec_manifest(dir.path(), "");
    let server = CodecServer::start(&manifest, &[], &[("CAISSON_CODEC_KEY", KEY)]);
    // Python encodes with the sample's codec; Caisson decodes.
    let script = r#"
import asyncio, json, sys
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from encryption_codec import EncryptionCodec

async def main():
    encoded = await EncryptionCodec().encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"from python"')])
    print(json_format.MessageToJson(Payloads(payloads=encoded), indent=None))

asyncio.run(main())
"#;
    let (status, _, body) = http(&server.url, "POST", "/decode", &[("content-type", "application/json")], &python(script, &[]));
    assert_eq!(status, 200, "{body}");
    let decoded: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(encoding(&decoded["payloads"][0]), "json/plain", "{decoded}");
    assert_eq!(b64(decoded["payloads"][0]["data"].as_str().unwrap()), b"\"from python\"");

    // Caisson encodes; Python decodes with the sample's codec.
    let plain = json!({ "payloads": [{ "metadata": { "encoding": "anNvbi9wbGFpbg==" }, "data": "ImZyb20gY2Fpc3NvbiI=" }] });
    let (status, _, body) = http(&server.url, "POST", "/encode", &[], &plain.to_string());
    assert_eq!(status, 200, "{body}");
    let script = r#"
import asyncio, sys
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from encryption_codec import EncryptionCodec

async def main(body):
    payloads = json_format.Parse(body, Payloads()).payloads
    assert payloads[0].metadata["encoding"] == b"binary/encrypted", payloads
    [decoded] = await EncryptionCodec().decode(payloads)
    print(decoded.metadata["encoding"].decode(), decoded.data.decode())

asyncio.run(main(sys.argv[1]))
"#;
    assert_eq!(python(script, &[&body]), "json/plain \"from caisson\"");
}

#[test]
fn the_codec_server_answers_cors_for_its_origin_only_requires_its_token_and_refuses_bad_json() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = codec_manifest(dir.path(), "");
    let env = [("CAISSON_CODEC_KEY", KEY), ("CODEC_TOKEN", "s3cret")];
    let server = CodecServer::start(&manifest, &["--cors-origin", "http://localhost:8233", "--require-token", "CODEC_TOKEN"], &env);
    let ui = ("Origin", "http://localhost:8233");

    let (status, headers, _) = http(&server.url, "OPTIONS", "/decode", &[ui, ("Access-Control-Request-Method", "POST")], "");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("http://localhost:8233"));
    assert_eq!(header(&headers, "access-control-allow-methods"), Some("POST"));
    assert_eq!(header(&headers, "access-control-allow-headers"), Some("content-type,x-namespace,authorization"));
    let (_, headers, _) = http(&server.url, "OPTIONS", "/decode", &[("Origin", "http://evil.example")], "");
    assert!(header(&headers, "access-control-allow-origin").is_none(), "{headers:?}");

    let body = json!({ "payloads": [{ "metadata": { "encoding": "anNvbi9wbGFpbg==" }, "data": "MQ==" }] }).to_string();
    for auth in [None, Some("Bearer wrong"), Some("s3cret")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().chain([ui]).collect();
        let (status, response_headers, _) = http(&server.url, "POST", "/encode", &headers, &body);
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(header(&response_headers, "access-control-allow-origin"), Some("http://localhost:8233"), "the UI can read the 401");
    }
    let auth = ("Authorization", "Bearer s3cret");
    let (status, _, encoded) = http(&server.url, "POST", "/encode", &[auth, ("X-Namespace", "default")], &body);
    assert_eq!(status, 200, "{encoded}");
    let (status, _, decoded) = http(&server.url, "POST", "/decode", &[auth], &encoded);
    assert_eq!((status, serde_json::from_str::<Json>(&decoded).unwrap()), (200, serde_json::from_str::<Json>(&body).unwrap()));

    for (bad, needle) in [("{", "not JSON"), ("{\"payloads\": [{\"data\": 1}]}", "payloads[0].data")] {
        let (status, _, message) = http(&server.url, "POST", "/decode", &[auth], bad);
        assert_eq!(status, 400, "{bad}: {message}");
        assert!(message.contains(needle), "{message}");
    }
    let other_key = json!({ "payloads": [{ "metadata": { "encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "b3RoZXI=" }, "data": "AAAA" }] });
    let (status, _, message) = http(&server.url, "POST", "/decode", &[auth], &other_key.to_string());
    assert_eq!(status, 422, "{message}");
    assert!(message.contains("Unrecognized key ID other"), "{message}");
    let (status, _, _) = http(&server.url, "GET", "/decode", &[auth], "");
    assert_eq!(status, 405);
}

/// `caisson worker` with `manifest` (and `env`) must refuse to start,
/// saying `needle`.
fn refused(manifest: &Path, env: &[(&str, &str)], needle: &str) {
    let out = Worker::command()
        .args(["worker", "--address", "127.0.0.1:1", "--manifest"])
        .arg(manifest)
        .arg(plugin("test-activities"))
        .env_remove("CAISSON_CODEC_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let printed = support::printed(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(printed.contains(needle), "expected `{needle}`:\n{printed}");
    assert!(!printed.contains("panicked"), "{printed}");
}

#[test]
fn a_codec_that_cannot_work_stops_the_worker_at_start_naming_it_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let key = [("CAISSON_CODEC_KEY", KEY)];
    let write = |text: String| {
        let path = dir.path().join("caisson.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let codec = plugin("aes-gcm-codec").display().to_string();
    refused(&codec_manifest(dir.path(), ""), &[], "secret `CAISSON_CODEC_KEY` is not set in the worker's environment");
    refused(&codec_manifest(dir.path(), ""), &[("CAISSON_CODEC_KEY", "short")], "an AES-256 key is 32 bytes, this one is 5");
    refused(&write("[codec]\npath = \"missing.wasm\"\n".to_string()), &key, "missing.wasm: cannot read");
    refused(
        &write(format!("[codec]\npath = {:?}\n", p("test-activities"))),
        &key,
        "not a codec component: it does not export caisson:codec/payload-codec",
    );
    refused(
        &write(format!("[codec]\npath = {codec:?}\nsecrets = [\"CAISSON_CODEC_KEY\"]\n")),
        &key,
        "refused its configuration: CODEC_KEY_ID is not set",
    );
    refused(&write(format!("[codec]\npath = {codec:?}\ndirs = []\n")), &key, "unknown field `dirs`");
    refused(&write(format!("[codec]\npath = {codec:?}\ntimeout = \"0s\"\n")), &key, "codec.timeout = \"0s\": must be between");
    refused(
        &write(format!(
            "[[tenant]]\nname = \"acme\"\n[[tenant.plugin]]\npath = {:?}\n[tenant.codec]\npath = {codec:?}\nsecrets = [\"CAISSON_CODEC_KEY\"]\n",
            p("test-activities")
        )),
        &key,
        "the secret `CAISSON_CODEC_KEY`: not in the tenant's allow_secrets",
    );
}

#[test]
fn signals_queries_and_updates_from_an_encrypting_client_cross_the_codec_both_ways() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = codec_manifest(dir.path(), "");
    let tq = unique("codec-handlers");
    let _worker = codec_worker(&server, &tq, &manifest);
    let (expense, updates) = (unique("expense"), unique("updates"));
    let script = r#"
import asyncio, json, sys
from temporalio.client import Client, WorkflowUpdateFailedError
from encryption_codec import converter

async def main(address, task_queue, expense_id, updates_id):
    client = await Client.connect(address, data_converter=converter())
    expense = await client.start_workflow("expense-approval", {"id": "e-xyzzy", "amount": 12.5, "timeout_ms": 60000}, id=expense_id, task_queue=task_queue)
    before = await expense.query("get-status")
    await expense.signal("approve", "carol-xyzzy")
    decided = await expense.result()
    handle = await client.start_workflow("update-approval", 100.0, id=updates_id, task_queue=task_queue)
    amount = await handle.execute_update("set-amount", 250.0)
    try:
        await handle.execute_update("set-amount", 20000.0)
        refused = None
    except WorkflowUpdateFailedError as e:
        refused = str(e.cause)
    charged = await handle.execute_update("charge", "o-xyzzy")
    approved = await handle.execute_update("approve", "dave")
    print(json.dumps({"before": before, "decided": decided, "amount": amount, "refused": refused, "charged": charged, "approved": approved, "result": await handle.result()}))

asyncio.run(main(*sys.argv[1:]))
"#;
    let got: Json = serde_json::from_str(&python(script, &[&server.address, &tq, &expense, &updates])).unwrap();
    assert_eq!(got["before"], json!({ "state": "pending", "decided_by": null }), "query answered through the codec: {got}");
    assert_eq!(got["decided"], json!({ "state": "approved", "decided_by": "carol-xyzzy" }), "signal decoded: {got}");
    assert_eq!(got["amount"], json!(250.0), "{got}");
    assert!(got["refused"].as_str().unwrap_or_default().contains("amount 20000 is not between 0 and 10000"), "{got}");
    assert_eq!(got["charged"], "charged-o-xyzzy", "an update that runs an activity: {got}");
    assert_eq!(got["approved"]["decided_by"], "dave", "{got}");
    assert_eq!(got["result"], "approved by dave for 250", "{got}");
    for id in [&expense, &updates] {
        let out = server.temporal(&["workflow", "show", "-o", "json", "--workflow-id", id]);
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(out.status.success() && !text.contains("xyzzy") && !text.contains("dave"), "{id}: plaintext in the history:\n{text}");
    }
}
