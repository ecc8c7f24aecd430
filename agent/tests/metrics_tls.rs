//! /metrics over HTTPS with the gRPC certificate: a real agent, a rustls client.

use std::net::SocketAddr;
use std::sync::Arc;

use servescope_agent::test_pki::TestPki;
use servescope_agent::AgentConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

fn request(auth: Option<&str>) -> String {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
}

/// GET /metrics over TLS, trusting `ca`; the whole response.
async fn get_tls(addr: SocketAddr, ca: &[u8], auth: Option<&str>) -> std::io::Result<String> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
    tls.write_all(request(auth).as_bytes()).await?;
    let mut out = Vec::new();
    // A TLS close without close_notify is an error here; what came before counts.
    let _ = tls.read_to_end(&mut out).await;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn metrics_over_tls_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = TestPki::make(dir.path()) else {
        return;
    };
    let mut cfg = AgentConfig::loopback(Some("m-tok".into()));
    cfg.tls = Some(pki.server_material(false).unwrap());
    cfg.kmsg = false;
    cfg.startup_watch = false;
    cfg.nvml_lib = Some(dir.path().join("none.so"));
    let a = servescope_agent::start(cfg).await.unwrap();
    let addr = a.metrics_addr.unwrap();
    let ca = std::fs::read(&pki.ca).unwrap();

    let ok = get_tls(addr, &ca, Some("m-tok")).await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("# TYPE "), "{ok}");
    let no = get_tls(addr, &ca, None).await.unwrap();
    assert!(no.starts_with("HTTP/1.1 401"), "{no}");
    let wrong = get_tls(addr, &ca, Some("m-tol")).await.unwrap();
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request(Some("m-tok")).as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("HTTP/1.1 200"),
        "plain HTTP must not be served on the TLS port"
    );

    // A client that does not trust the agent's CA is refused at the handshake.
    let other = std::fs::read(dir.path().join("other.pem")).unwrap();
    assert!(get_tls(addr, &other, Some("m-tok")).await.is_err());
    a.shutdown().await;
}
