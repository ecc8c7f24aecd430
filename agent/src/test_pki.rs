//! Certificates for TLS tests, made with the `openssl` command: a CA, a server
//! certificate for `localhost`/127.0.0.1, a client certificate from the same CA, and
//! a client certificate from a CA the agent does not trust.

use std::path::{Path, PathBuf};
use std::process::Command;

/// PEM files in one directory.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

impl TestPki {
    /// Makes the certificates under `dir`; `None` when openssl is missing or fails
    /// (the message says why).
    pub fn make(dir: &Path) -> Option<TestPki> {
        let ext = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())
        };
        let steps: [&str; 8] = [
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem",
            "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out srv.csr",
            "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile srv.cnf -out cert.pem",
            "req -newkey rsa:2048 -nodes -subj /CN=coordinator -keyout client.key -out client.csr",
            "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile client.cnf -out client.pem",
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout other.key -out other.pem",
            "req -newkey rsa:2048 -nodes -subj /CN=stranger -keyout stranger.key -out stranger.csr",
            "x509 -req -in stranger.csr -CA other.pem -CAkey other.key -CAcreateserial -days 1 -extfile client.cnf -out stranger.pem",
        ];
        let made = ext(
            "srv.cnf",
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .and_then(|_| {
            ext(
                "client.cnf",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            )
        })
        .and_then(|_| {
            for step in steps {
                let out = Command::new("openssl")
                    .args(step.split(' '))
                    .current_dir(dir)
                    .output()
                    .map_err(|e| format!("openssl: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "openssl {step}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            Ok(())
        });
        if let Err(e) = made {
            println!("no test certificates ({e}); apt-get install openssl");
            return None;
        }
        Some(TestPki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("cert.pem"),
            server_key: dir.join("key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            stranger_cert: dir.join("stranger.pem"),
            stranger_key: dir.join("stranger.key"),
        })
    }

    /// The server's certificate and key as the agent takes them; `client_ca`: also
    /// require client certificates from this test CA.
    pub fn server_material(&self, client_ca: bool) -> std::io::Result<crate::config::TlsMaterial> {
        Ok(crate::config::TlsMaterial {
            cert_pem: std::fs::read(&self.server_cert)?,
            key_pem: std::fs::read(&self.server_key)?,
            client_ca_pem: if client_ca {
                Some(std::fs::read(&self.ca)?)
            } else {
                None
            },
        })
    }
}
