//! `caisson codec-server`: the Temporal codec server protocol over a
//! codec component, so that the Temporal UI and `temporal workflow show
//! --codec-endpoint` show the plaintext of encoded payloads.
//!
//! The protocol (as the SDKs' samples serve it): `POST /encode` and
//! `POST /decode` with a body `{"payloads": [{"metadata": {"k":
//! "<base64>"}, "data": "<base64>"}]}` (the proto3 JSON of `Payloads`),
//! answered in the same form. The UI calls it from the browser, so it
//! answers CORS preflights (`OPTIONS`) — for the configured UI origin
//! only: other origins get no CORS headers and the browser refuses them.
//!
//! Whoever reaches the server can decrypt, so it listens on 127.0.0.1
//! unless told otherwise and can require a bearer token (the UI forwards
//! the user's with "Pass access token"; the CLI sends `--codec-auth`).

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use caisson_runtime::codec::{Codec, Payload};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest request body read (Temporal's own payload limit is a few
/// MiB per request; a UI page decodes a history's worth at once).
const MAX_BODY: usize = 64 << 20;

/// What the server answers with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The only origin that gets CORS headers (the Temporal UI's, e.g.
    /// `http://localhost:8233`); none: no CORS at all.
    pub cors_origin: Option<String>,
    /// Requests must carry `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
}

/// Serves `codec` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, codec: Arc<Codec>, options: Options) -> anyhow::Result<()> {
    let options = Arc::new(options);
    loop {
        let (stream, peer) = listener.accept().await.context("accepting a connection")?;
        let (codec, options) = (codec.clone(), options.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (codec, options) = (codec.clone(), options.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(request, &codec, &options).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!("codec server: connection from {peer}: {e}");
            }
        });
    }
}

/// Binds `address` (a `host:port`); the bound address tells the port
/// when it was 0.
pub async fn bind(address: &str) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

async fn handle(request: Request<Incoming>, codec: &Codec, options: &Options) -> Response<Full<Bytes>> {
    let origin = request.headers().get(hyper::header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let mut response = answer(request, codec, options).await;
    if let (Some(origin), Some(allowed)) = (origin, &options.cors_origin)
        && origin == *allowed
    {
        let headers = response.headers_mut();
        let allow_headers = if options.token.is_some() { "content-type,x-namespace,authorization" } else { "content-type,x-namespace" };
        for (name, value) in [
            ("access-control-allow-origin", origin.as_str()),
            ("access-control-allow-methods", "POST"),
            ("access-control-allow-headers", allow_headers),
            ("vary", "Origin"),
        ] {
            if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

async fn answer(request: Request<Incoming>, codec: &Codec, options: &Options) -> Response<Full<Bytes>> {
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let decode = match path.as_str() {
        "/encode" => false,
        "/decode" => true,
        _ => return error(StatusCode::NOT_FOUND, &format!("no such endpoint {path}: POST /encode or /decode")),
    };
    if request.method() == Method::OPTIONS {
        return Response::builder().status(StatusCode::OK).body(Full::default()).unwrap_or_default();
    }
    if request.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, &format!("{} {path}: use POST", request.method()));
    }
    if let Some(token) = &options.token {
        let given = request.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !bearer_matches(given, token) {
            let mut response = error(StatusCode::UNAUTHORIZED, "this codec server requires Authorization: Bearer <token>");
            response.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {e}")),
    };
    let payloads = match payloads_from_json(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    let result = if decode { codec.decode(payloads) } else { codec.encode(payloads) };
    match result {
        Ok(payloads) => {
            let body = payloads_to_json(&payloads).to_string();
            Response::builder()
                .status(StatusCode::OK)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default()
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    }
}

/// True when `header` is `Bearer <token>` (the scheme in any case), with
/// a comparison whose time does not depend on where the texts differ.
fn bearer_matches(header: &str, token: &str) -> bool {
    let Some((scheme, given)) = header.trim().split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{message}\n"))))
        .unwrap_or_default()
}

/// `{"payloads": [{"metadata": {k: base64}, "data": base64}]}` → payloads.
pub fn payloads_from_json(body: &[u8]) -> Result<Vec<Payload>, String> {
    let doc: Json = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = match doc.get("payloads") {
        Some(Json::Array(list)) => list,
        Some(Json::Null) | None if doc.is_object() => return Ok(Vec::new()),
        _ => return Err("expected {\"payloads\": [...]}".into()),
    };
    let bytes = |what: &str, v: &Json| -> Result<Vec<u8>, String> {
        let text = v.as_str().ok_or_else(|| format!("{what}: expected a base64 string"))?;
        BASE64.decode(text).map_err(|e| format!("{what}: invalid base64: {e}"))
    };
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let metadata = match p.get("metadata") {
                Some(Json::Object(m)) => m
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), bytes(&format!("payloads[{i}].metadata.{k}"), v)?)))
                    .collect::<Result<_, String>>()?,
                None | Some(Json::Null) => Vec::new(),
                Some(_) => return Err(format!("payloads[{i}].metadata: expected an object")),
            };
            let data = match p.get("data") {
                None | Some(Json::Null) => Vec::new(),
                Some(v) => bytes(&format!("payloads[{i}].data"), v)?,
            };
            Ok(Payload { metadata, data })
        })
        .collect()
}

/// Payloads → `{"payloads": [...]}`.
pub fn payloads_to_json(payloads: &[Payload]) -> Json {
    let list: Vec<Json> = payloads
        .iter()
        .map(|p| {
            let metadata: BTreeMap<&str, String> = p.metadata.iter().map(|(k, v)| (k.as_str(), BASE64.encode(v))).collect();
            json!({ "metadata": metadata, "data": BASE64.encode(&p.data) })
        })
        .collect();
    json!({ "payloads": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_through_the_protocol_json() {
        let payloads =
            vec![Payload { metadata: vec![("encoding".into(), b"json/plain".to_vec())], data: b"\"hi\"".to_vec() }, Payload::default()];
        let json = payloads_to_json(&payloads);
        assert_eq!(json["payloads"][0]["metadata"]["encoding"], "anNvbi9wbGFpbg==");
        assert_eq!(payloads_from_json(json.to_string().as_bytes()).unwrap(), payloads);
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        for (body, needle) in [
            (&b"{"[..], "not JSON"),
            (b"[]", "expected {\"payloads\""),
            (b"{\"payloads\": [{\"data\": 3}]}", "payloads[0].data: expected a base64 string"),
            (b"{\"payloads\": [{\"data\": \"!!\"}]}", "payloads[0].data: invalid base64"),
            (b"{\"payloads\": [{\"metadata\": []}]}", "payloads[0].metadata: expected an object"),
        ] {
            let err = payloads_from_json(body).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(payloads_from_json(b"{}").unwrap().is_empty());
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(bearer_matches("Bearer s3cret", "s3cret"));
        assert!(bearer_matches("bearer s3cret", "s3cret"));
        for wrong in ["", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
            assert!(!bearer_matches(wrong, "s3cret"), "{wrong}");
        }
    }
}
