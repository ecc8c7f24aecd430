//! TLS (rustls) between coordinator and agent, with a certificate made by openssl.

use std::process::Command;
use std::time::Duration;

use servescope_agent::config::TlsMaterial;
use servescope_agent::AgentConfig;
use servescope_coordinator::connect::connect;
use servescope_coordinator::AgentEndpoint;
use servescope_proto::v1::GetInventoryRequest;

#[tokio::test]
async fn tls_agent_serves_verified_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
    // A CA, and a server certificate for localhost signed by it.
    let ca_cmd =
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem";
    let csr_cmd = "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out srv.csr";
    let sign_cmd = "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem";
    std::fs::write(
        d.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    for cmd in [ca_cmd, csr_cmd, sign_cmd] {
        match Command::new("openssl")
            .args(cmd.split(' '))
            .current_dir(d)
            .output()
        {
            Ok(o) if o.status.success() => {}
            other => {
                println!("skipping: openssl could not make certificates ({other:?}); apt-get install openssl");
                return;
            }
        }
    }
    let mut cfg = AgentConfig::loopback(Some("tok".into()));
    cfg.tls = Some(TlsMaterial {
        cert_pem: std::fs::read(&cert).unwrap(),
        key_pem: std::fs::read(&key).unwrap(),
    });
    cfg.kmsg = false;
    cfg.metrics_listen = None;
    cfg.nvml_lib = Some(dir.path().join("none.so"));
    let a = servescope_agent::start(cfg).await.unwrap();

    let mut ep = AgentEndpoint::new(a.grpc_addr.to_string(), Some("tok".into()));
    ep.tls_ca_pem = Some(std::fs::read(&ca).unwrap());
    ep.tls_domain = Some("localhost".into());
    let mut c = connect(&ep).await.expect("TLS connect");
    let inv = c
        .get_inventory(GetInventoryRequest {})
        .await
        .expect("inventory over TLS");
    assert!(!inv.into_inner().hostname.is_empty());

    // Plain text to a TLS port does not get through.
    let mut plain = AgentEndpoint::new(a.grpc_addr.to_string(), Some("tok".into()));
    plain.connect_timeout = Duration::from_secs(2);
    let r = match connect(&plain).await {
        Ok(mut c) => c
            .get_inventory(GetInventoryRequest {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(r.is_err(), "plaintext request to a TLS agent must fail");
    a.shutdown().await;
}
