//! Network activities: plain `wasi:http` and `wasi:sockets` calls, so the
//! tests see exactly what the host's `allow_outbound` policy lets through.

wit_bindgen::generate!({
    world: "caisson-plugins:net-activities/net-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;
use wasip2::sockets::network::{IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};

struct Net;

fn get(url: &str) -> Result<HttpResponse, String> {
    let (scheme, rest) = url.split_once("://").ok_or("url needs a scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if scheme == "https" { Scheme::Https } else { Scheme::Http };
    request.set_scheme(Some(&scheme)).map_err(|_| "bad scheme")?;
    request.set_authority(Some(authority)).map_err(|_| "bad authority")?;
    request.set_path_with_query(Some(path)).map_err(|_| "bad path")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = future.get().ok_or("no response")?.map_err(|_| "response taken")?.map_err(|e| format!("{e:?}"))?;
    let location = response
        .headers()
        .entries()
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned());
    let body = response.consume().map_err(|_| "no body")?;
    let stream = body.stream().map_err(|_| "no body stream")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading the body: {e:?}")),
        }
    }
    Ok(HttpResponse { status: response.status(), location, body: String::from_utf8_lossy(&bytes).into_owned() })
}

impl Guest for Net {
    fn http_get(url: String) -> Result<HttpResponse, String> {
        get(&url)
    }

    fn http_fetch(url: String) -> Result<String, String> {
        let mut url = url;
        for _ in 0..4 {
            let response = get(&url)?;
            match (response.status, response.location) {
                (300..=399, Some(next)) => url = next,
                _ => return Ok(response.body),
            }
        }
        Err("too many redirects".into())
    }

    fn tcp_read_line(address: String) -> Result<String, String> {
        let addr: std::net::SocketAddrV4 = address.parse().map_err(|e| format!("{address}: {e}"))?;
        let network = wasip2::sockets::instance_network::instance_network();
        let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4).map_err(|e| format!("creating a socket: {e:?}"))?;
        let [a, b, c, d] = addr.ip().octets();
        let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress { port: addr.port(), address: (a, b, c, d) });
        socket.start_connect(&network, remote).map_err(|e| format!("connect {address}: {e:?}"))?;
        socket.subscribe().block();
        let (input, _output) = socket.finish_connect().map_err(|e| format!("connect {address}: {e:?}"))?;
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            match input.blocking_read(1) {
                Ok(byte) => line.extend(byte),
                Err(_) => break,
            }
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
    }

    fn lookup(name: String) -> Result<Vec<String>, String> {
        let network = wasip2::sockets::instance_network::instance_network();
        let stream = wasip2::sockets::ip_name_lookup::resolve_addresses(&network, &name).map_err(|e| format!("{name}: {e:?}"))?;
        let mut found = Vec::new();
        loop {
            match stream.resolve_next_address() {
                Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => found.push(format!("{a}.{b}.{c}.{d}")),
                Ok(Some(IpAddress::Ipv6(_))) => found.push("ipv6".into()),
                Ok(None) => return Ok(found),
                Err(wasip2::sockets::network::ErrorCode::WouldBlock) => stream.subscribe().block(),
                Err(e) => return Err(format!("{name}: {e:?}")),
            }
        }
    }
}

export!(Net);
