//! A small blocking HTTP client for activities, over `wasi:http` (feature
//! `http`). Every request goes through the host, which allows only the
//! origins in the plugin's `allow_outbound`; a refused request comes back
//! as an [`HttpError`] naming the host's reason.
//!
//! ```ignore
//! use caisson_guest::http;
//!
//! let hits: Vec<Hit> = http::get("http://127.0.0.1:8099/search?q=wasm")?.json()?;
//! let mut response = http::post_json("http://127.0.0.1:8098/v1/complete", &prompt)?;
//! response.for_each_chunk(|chunk| { act::heartbeat(&chunk.len()); })?;
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::{InputStream, StreamError};

/// Why a request failed before a response arrived, or while reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

fn err(message: impl Into<String>) -> HttpError {
    HttpError(message.into())
}

/// A response whose body has not been read yet.
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    // Drop order matters: the stream before the body before the response.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response").field("status", &self.status).field("headers", &self.headers).finish()
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        drop(self.stream.take());
        drop(self.body.take());
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Calls `f` with each chunk of the body as it arrives (for progress
    /// heartbeats while a slow body streams in).
    pub fn for_each_chunk(&mut self, mut f: impl FnMut(&[u8])) -> Result<(), HttpError> {
        let Some(stream) = &self.stream else { return Ok(()) };
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if !chunk.is_empty() {
                        f(&chunk);
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(err(format!("reading the body: {}", e.to_debug_string()))),
            }
        }
        drop(self.stream.take());
        Ok(())
    }

    /// The whole body.
    pub fn bytes(mut self) -> Result<Vec<u8>, HttpError> {
        let mut bytes = Vec::new();
        self.for_each_chunk(|c| bytes.extend_from_slice(c))?;
        Ok(bytes)
    }

    /// The whole body as text (invalid UTF-8 replaced).
    pub fn text(self) -> Result<String, HttpError> {
        Ok(String::from_utf8_lossy(&self.bytes()?).into_owned())
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, HttpError> {
        let bytes = self.bytes()?;
        serde_json::from_slice(&bytes).map_err(|e| err(format!("the response is not the expected JSON: {e}")))
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    request("GET", url, &[], None)
}

/// `POST url` with a JSON body.
pub fn post_json<T: Serialize + ?Sized>(url: &str, body: &T) -> Result<Response, HttpError> {
    let body = serde_json::to_vec(body).map_err(|e| err(format!("serializing the body: {e}")))?;
    request("POST", url, &[("content-type", "application/json")], Some(&body))
}

/// Any request: `method` (`GET`, `POST`, …), absolute `http(s)://` URL,
/// headers, optional body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response, HttpError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| err(format!("{url}: the URL needs a scheme")))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(err(format!("{url}: unsupported scheme {other}"))),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fields = Fields::new();
    for (k, v) in headers {
        fields.append(k, v.as_bytes()).map_err(|e| err(format!("header {k}: {e:?}")))?;
    }
    // A known length instead of chunked encoding: simple servers (Python's
    // http.server among them) read bodies by Content-Length only.
    if let Some(body) = body
        && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        fields.append("content-length", body.len().to_string().as_bytes()).map_err(|e| err(format!("content-length: {e:?}")))?;
    }
    let request = OutgoingRequest::new(fields);
    let method_name = method;
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_owned()),
    };
    request.set_method(&method).map_err(|_| err("bad method"))?;
    request.set_scheme(Some(&scheme)).map_err(|_| err("bad scheme"))?;
    request.set_authority(Some(authority)).map_err(|_| err(format!("{url}: bad authority")))?;
    request.set_path_with_query(Some(path)).map_err(|_| err(format!("{url}: bad path")))?;
    let outgoing_body = request.body().map_err(|_| err("request body taken"))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| err(format!("{method_name} {url}: {e:?}")))?;
    {
        let stream = outgoing_body.write().map_err(|_| err("request body stream taken"))?;
        for chunk in body.unwrap_or_default().chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| err(format!("writing the request body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| err(format!("finishing the request body: {e:?}")))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| err("no response"))?
        .map_err(|_| err("response already taken"))?
        .map_err(|e| err(format!("{method_name} {url}: {e:?}")))?;
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body = response.consume().map_err(|_| err("response body taken"))?;
    let stream = body.stream().map_err(|_| err("response body stream taken"))?;
    Ok(Response { status: response.status(), headers, stream: Some(stream), body: Some(body), _response: response })
}
