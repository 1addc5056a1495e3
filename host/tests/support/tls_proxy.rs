//! A TLS-terminating gRPC proxy in front of a plaintext dev server, and
//! the throw-away certificates it and the worker use, made at test time.
//!
//! The proxy accepts HTTP/2 over TLS (ALPN `h2`), optionally requiring a
//! client certificate signed by the test CA, records each request's path
//! and `authorization` header, and forwards the request (body and
//! trailers, both ways) to the dev server over plaintext HTTP/2.
#![allow(dead_code)]

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the TLS tests need, written to a temporary folder as PEM.
pub struct Certificates {
    dir: tempfile::TempDir,
    /// The test CA's certificate (what the worker trusts).
    pub ca: PathBuf,
    /// An unrelated CA's certificate (the wrong one to trust).
    pub other_ca: PathBuf,
    /// The proxy's certificate for `localhost` and 127.0.0.1, by the test CA.
    pub server: Pem,
    /// Like `server`, but it expired in 2000.
    pub expired_server: Pem,
    /// A client certificate by the test CA, for mutual TLS.
    pub client: Pem,
    /// A client certificate by the unrelated CA (refused).
    pub other_client: Pem,
}

impl Certificates {
    pub fn make() -> Certificates {
        let dir = tempfile::tempdir().unwrap();
        let (ca, other_ca) = (ca("caisson test CA"), ca("caisson unrelated CA"));

        let server = leaf(&ca, "localhost", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
        let expired = leaf(&ca, "localhost", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, true);
        let client = leaf(&ca, "caisson test worker", &[], ExtendedKeyUsagePurpose::ClientAuth, false);
        let other_client = leaf(&other_ca, "caisson test worker", &[], ExtendedKeyUsagePurpose::ClientAuth, false);

        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let pem = |name: &str, (cert, key): (String, String)| Pem {
            cert: write(&format!("{name}.pem"), &cert),
            key: write(&format!("{name}-key.pem"), &key),
        };
        Certificates {
            ca: write("ca.pem", &ca.pem()),
            other_ca: write("other-ca.pem", &other_ca.pem()),
            server: pem("server", server),
            expired_server: pem("expired-server", expired),
            client: pem("client", client),
            other_client: pem("other-client", other_client),
            dir,
        }
    }

    /// The folder the files are in (for more test files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A self-signed CA named `name`.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate by `ca` (PEM, key PEM); an `expired` one was valid
/// during 1999 only.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> (String, String) {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = rcgen::date_time_ymd(1999, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Each request the proxy forwarded: its path and `authorization` header.
type SeenRequests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The proxy, stopped when dropped.
pub struct TlsProxy {
    /// `127.0.0.1:PORT`, TLS.
    pub address: String,
    seen: SeenRequests,
    refused: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsProxy {
    /// Serves `server` (certificate and key) on a free port and forwards to
    /// `upstream` (`127.0.0.1:PORT`, plaintext gRPC). With `client_ca`,
    /// clients must present a certificate signed by it.
    pub fn start(upstream: &str, server: &Pem, client_ca: Option<&Path>) -> TlsProxy {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&server.cert).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(&server.key).unwrap();
        let builder = ServerConfig::builder();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                    roots.add(cert.unwrap()).unwrap();
                }
                builder.with_client_cert_verifier(WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap())
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (seen, refused) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (upstream, log, refusals) = (upstream.to_owned(), seen.clone(), refused.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
                let serve = async move {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else { continue };
                        let (acceptor, client, upstream, log, refusals) =
                            (acceptor.clone(), client.clone(), upstream.clone(), log.clone(), refusals.clone());
                        tokio::spawn(async move {
                            let tls = match acceptor.accept(tcp).await {
                                Ok(tls) => tls,
                                Err(e) => return refusals.lock().unwrap().push(e.to_string()),
                            };
                            let forward = hyper::service::service_fn(move |request: Request<Incoming>| {
                                forward(request, client.clone(), upstream.clone(), log.clone())
                            });
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(tls), forward)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        TlsProxy { address, seen, refused, stop: Some(stop), thread: Some(thread) }
    }

    /// `(path, authorization header)` of each request forwarded so far.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }

    /// Why each refused TLS handshake failed, as the proxy saw it.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

async fn forward(
    mut request: Request<Incoming>,
    client: Client<HttpConnector, Incoming>,
    upstream: String,
    log: SeenRequests,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let authorization = request.headers().get(hyper::header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    log.lock().unwrap().push((path.clone(), authorization));
    *request.uri_mut() = format!("http://{upstream}{path}").parse().unwrap();
    client.request(request).await
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.thread.take().unwrap().join();
    }
}
