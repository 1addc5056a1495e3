//! Outbound network policy: which hosts an activity may reach.
//!
//! Patterns follow Spin's `allowed_outbound_hosts`: `scheme://host:port`.
//!
//! * `scheme`: `http`, `https`, `tcp`, `udp`, or `*` for any.
//! * `host`: a name (`api.example.com`), an IP literal (`127.0.0.1`,
//!   `[::1]`), a wildcard suffix (`*.example.com`), or `*`.
//! * `port`: a number or `*`; may be left out for `http` (80) and `https`
//!   (443).
//!
//! A name and an IP literal are different hosts: allowing
//! `http://localhost:8080` does not allow `http://127.0.0.1:8080`.
//! HTTP requests (`wasi:http`) are checked against `http`/`https`
//! patterns, each request on its own (a redirect is a new request).
//! Socket connections (`wasi:sockets`) are checked against `tcp`/`udp`
//! patterns by IP address; a pattern naming a host allows the addresses
//! that host resolves to. Name lookups are possible only when some
//! pattern names a host.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// An `allow_outbound` entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allow_outbound pattern `{pattern}`: {reason} (expected scheme://host:port, e.g. https://api.example.com:443)")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    Name(String),
    Suffix(String),
    Ip(IpAddr),
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    scheme: Option<String>,
    host: Host,
    port: Option<u16>,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            Host::Any => "*".to_owned(),
            Host::Name(n) => n.clone(),
            Host::Suffix(s) => format!("*.{s}"),
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            Host::Ip(ip) => ip.to_string(),
        };
        let port = self.port.map_or("*".to_owned(), |p| p.to_string());
        write!(f, "{}://{host}:{port}", self.scheme.as_deref().unwrap_or("*"))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl Pattern {
    /// Parses `scheme://host[:port]`.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let err = |reason: &str| PatternError { pattern: text.to_owned(), reason: reason.to_owned() };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "tcp" | "udp" | "*") {
            return Err(err("the scheme must be http, https, tcp, udp or *"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(err("a pattern names a host and port, not a path"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or_else(|| err("unclosed `[`"))?;
            (format!("[{ip}]"), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        let port = match port {
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| err("the port must be a number or *"))?),
            None => match default_port(&scheme) {
                Some(p) => Some(p),
                None => return Err(err("give a port (or *) for this scheme")),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            Host::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            Host::Suffix(suffix.to_owned())
        } else if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Host::Ip(ip.parse().map_err(|_| err("not an IPv6 address"))?)
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            Host::Ip(ip)
        } else if !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            Host::Name(host)
        } else {
            return Err(err("the host must be a name, an IP address, *.suffix or *"));
        };
        Ok(Pattern { scheme: (scheme != "*").then_some(scheme), host, port })
    }

    /// Does this pattern allow everything `other` allows? Used to hold a
    /// tenant's plugins inside the tenant's own `allow_outbound` ceiling.
    pub fn covers(&self, other: &Pattern) -> bool {
        let scheme = match (&self.scheme, &other.scheme) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        let port = match (self.port, other.port) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        let host = match (&self.host, &other.host) {
            (Host::Any, _) => true,
            (Host::Suffix(a), Host::Suffix(b)) => b == a || b.ends_with(&format!(".{a}")),
            (Host::Suffix(a), Host::Name(b)) => b.ends_with(&format!(".{a}")),
            (a, b) => a == b,
        };
        scheme && port && host
    }

    fn scheme_matches(&self, scheme: &str) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
    }

    fn port_matches(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }

    fn host_matches(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        match &self.host {
            Host::Any => true,
            Host::Name(n) => *n == host,
            Host::Suffix(s) => host.ends_with(&format!(".{s}")),
            Host::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        }
    }
}

/// The parsed `allow_outbound` list of one plugin. Empty: nothing allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    patterns: Vec<Pattern>,
    /// Addresses of the host names in `tcp`/`udp` patterns, resolved when
    /// the plugin loads (socket checks run synchronously).
    resolved: std::collections::HashMap<String, Vec<IpAddr>>,
}

impl OutboundPolicy {
    /// Parses every pattern; the first bad one is the error.
    pub fn parse(patterns: &[String]) -> Result<Self, PatternError> {
        let patterns: Vec<Pattern> = patterns.iter().map(|p| Pattern::parse(p)).collect::<Result<_, _>>()?;
        let mut resolved = std::collections::HashMap::new();
        for p in &patterns {
            if let (Host::Name(name), false) = (&p.host, p.scheme.as_deref().is_some_and(|s| s == "http" || s == "https")) {
                let ips = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
                    .map(|addrs| addrs.map(|a| a.ip()).collect())
                    .unwrap_or_default();
                resolved.insert(name.clone(), ips);
            }
        }
        Ok(OutboundPolicy { patterns, resolved })
    }

    /// True when nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// May the guest send an HTTP request to `scheme://host:port`?
    pub fn allows_http(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let Some(port) = port.or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.patterns.iter().any(|p| p.scheme_matches(&scheme) && p.host_matches(host) && p.port_matches(port))
    }

    /// Patterns that could allow a `tcp`/`udp` connection to `port`.
    fn socket_patterns(&self, transport: &str, port: u16) -> impl Iterator<Item = &Pattern> {
        self.patterns.iter().filter(move |p| p.scheme_matches(transport) && p.port_matches(port))
    }

    /// May the guest open a `transport` (`tcp` or `udp`) connection to
    /// `addr`? A pattern naming a host allows the addresses that name
    /// resolved to when the plugin loaded.
    pub fn allows_socket(&self, transport: &str, addr: SocketAddr) -> bool {
        self.socket_patterns(transport, addr.port()).any(|p| match &p.host {
            Host::Any => true,
            Host::Ip(ip) => *ip == addr.ip(),
            Host::Name(name) => self.resolved.get(name).is_some_and(|ips| ips.contains(&addr.ip())),
            Host::Suffix(_) => false,
        })
    }

    /// Whether any pattern names a host (so name lookups are useful).
    pub fn names_hosts(&self) -> bool {
        self.patterns.iter().any(|p| matches!(p.host, Host::Name(_) | Host::Suffix(_) | Host::Any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn parses_and_rejects_with_the_pattern_named() {
        assert_eq!(Pattern::parse("https://api.example.com").unwrap().to_string(), "https://api.example.com:443");
        assert_eq!(Pattern::parse("http://127.0.0.1:8080").unwrap().to_string(), "http://127.0.0.1:8080");
        assert_eq!(Pattern::parse("*://*.example.com:*").unwrap().to_string(), "*://*.example.com:*");
        assert_eq!(Pattern::parse("tcp://[::1]:5432").unwrap().to_string(), "tcp://[::1]:5432");
        for bad in ["api.example.com", "ftp://x:21", "tcp://db.internal", "http://x:port", "http://x/path", "http://bad host:1"] {
            let e = Pattern::parse(bad).unwrap_err();
            assert_eq!(e.pattern, bad);
            assert!(e.to_string().contains(bad));
        }
    }

    #[test]
    fn http_requires_scheme_host_and_port_to_match() {
        let p = policy(&["http://127.0.0.1:8080", "https://*.example.com", "http://localhost:9000"]);
        assert!(p.allows_http("http", "127.0.0.1", Some(8080)));
        assert!(!p.allows_http("http", "127.0.0.1", Some(8081)), "another port");
        assert!(!p.allows_http("https", "127.0.0.1", Some(8080)), "another scheme");
        assert!(!p.allows_http("http", "localhost", Some(8080)), "a name is not its IP");
        assert!(!p.allows_http("http", "127.0.0.1", Some(9000)), "an IP literal is not the name");
        assert!(p.allows_http("http", "localhost", Some(9000)));
        assert!(p.allows_http("https", "api.example.com", None));
        assert!(!p.allows_http("https", "example.com", None), "the suffix wildcard needs a subdomain");
        assert!(!p.allows_http("https", "evil-example.com", None));
        assert!(!policy(&[]).allows_http("http", "127.0.0.1", Some(80)), "nothing by default");
        assert!(!p.allows_http("tcp", "127.0.0.1", Some(8080)), "sockets patterns are not HTTP patterns");
    }

    #[test]
    fn covers_is_a_subset_test() {
        let p = |t: &str| Pattern::parse(t).unwrap();
        assert!(p("http://127.0.0.1:*").covers(&p("http://127.0.0.1:8080")));
        assert!(p("*://*.example.com:*").covers(&p("https://api.example.com")));
        assert!(p("https://*.example.com").covers(&p("https://*.eu.example.com")));
        assert!(!p("http://127.0.0.1:8080").covers(&p("http://127.0.0.1:*")));
        assert!(!p("http://127.0.0.1:8080").covers(&p("http://127.0.0.2:8080")));
        assert!(!p("https://*.example.com").covers(&p("https://example.com")));
        assert!(!p("http://localhost:80").covers(&p("*://localhost:80")));
    }

    #[test]
    fn sockets_match_tcp_patterns_by_address() {
        let p = policy(&["tcp://127.0.0.1:5432", "tcp://localhost:6379", "http://127.0.0.1:8080"]);
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(p.allows_socket("tcp", addr("127.0.0.1:5432")));
        assert!(!p.allows_socket("tcp", addr("127.0.0.1:5433")));
        assert!(!p.allows_socket("udp", addr("127.0.0.1:5432")));
        assert!(p.allows_socket("tcp", addr("127.0.0.1:6379")), "localhost resolves to 127.0.0.1");
        assert!(!p.allows_socket("tcp", addr("127.0.0.1:8080")), "an http pattern does not open raw sockets");
        assert!(!p.allows_socket("tcp", addr("10.0.0.1:5432")));
    }
}
