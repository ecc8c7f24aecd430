//! TLS (rustls) between coordinator and agent, with certificates made by openssl:
//! server TLS, and mutual TLS when the agent requires client certificates.

use std::time::Duration;

use servescope_agent::test_pki::TestPki;
use servescope_agent::AgentConfig;
use servescope_coordinator::orchestration::connect::connect;
use servescope_coordinator::{AgentEndpoint, ClientCert};
use servescope_proto::v1::GetInventoryRequest;

fn agent_config(dir: &std::path::Path, pki: &TestPki, client_ca: bool) -> AgentConfig {
    let mut cfg = AgentConfig::loopback(Some("tok".into()));
    cfg.tls = Some(pki.server_material(client_ca).unwrap());
    cfg.kmsg = false;
    cfg.startup_watch = false;
    cfg.metrics_listen = None;
    cfg.nvml_lib = Some(dir.join("none.so"));
    cfg
}

fn endpoint(addr: std::net::SocketAddr, pki: &TestPki) -> AgentEndpoint {
    let mut ep = AgentEndpoint::new(addr.to_string(), Some("tok".into()));
    ep.tls_ca_pem = Some(std::fs::read(&pki.ca).unwrap());
    ep.tls_domain = Some("localhost".into());
    ep.connect_timeout = Duration::from_secs(5);
    ep
}

/// Connects and asks for the inventory; the error text otherwise.
async fn inventory(ep: &AgentEndpoint) -> Result<String, String> {
    let mut c = connect(ep).await.map_err(|e| e.to_string())?;
    c.get_inventory(GetInventoryRequest {})
        .await
        .map(|r| r.into_inner().hostname)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn tls_agent_serves_verified_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = TestPki::make(dir.path()) else {
        return;
    };
    let a = servescope_agent::start(agent_config(dir.path(), &pki, false))
        .await
        .unwrap();
    let host = inventory(&endpoint(a.grpc_addr, &pki))
        .await
        .expect("inventory over TLS");
    assert!(!host.is_empty());

    // Plain text to a TLS port does not get through.
    let mut plain = AgentEndpoint::new(a.grpc_addr.to_string(), Some("tok".into()));
    plain.connect_timeout = Duration::from_secs(2);
    assert!(
        inventory(&plain).await.is_err(),
        "plaintext request to a TLS agent must fail"
    );
    a.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_admits_certified_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = TestPki::make(dir.path()) else {
        return;
    };
    let a = servescope_agent::start(agent_config(dir.path(), &pki, true))
        .await
        .unwrap();
    let cert = |c: &std::path::Path, k: &std::path::Path| ClientCert {
        cert_pem: std::fs::read(c).unwrap(),
        key_pem: std::fs::read(k).unwrap(),
    };

    // A client certificate from the agent's client CA: admitted.
    let mut ep = endpoint(a.grpc_addr, &pki);
    ep.tls_client = Some(cert(&pki.client_cert, &pki.client_key));
    let host = inventory(&ep)
        .await
        .expect("mTLS with a trusted client cert");
    assert!(!host.is_empty());

    // The token alone is not enough any more.
    let anonymous = endpoint(a.grpc_addr, &pki);
    assert!(
        inventory(&anonymous).await.is_err(),
        "a client without a certificate must be refused"
    );
    // Nor is a certificate from another CA.
    let mut stranger = endpoint(a.grpc_addr, &pki);
    stranger.tls_client = Some(cert(&pki.stranger_cert, &pki.stranger_key));
    assert!(
        inventory(&stranger).await.is_err(),
        "a certificate from an untrusted CA must be refused"
    );
    // A trusted certificate does not replace the token.
    let mut no_token = endpoint(a.grpc_addr, &pki);
    no_token.token = None;
    no_token.tls_client = Some(cert(&pki.client_cert, &pki.client_key));
    let e = inventory(&no_token).await.unwrap_err();
    assert!(e.contains("authorization"), "{e}");
    a.shutdown().await;
}
