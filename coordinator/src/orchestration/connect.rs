//! Connecting to an agent: address, bearer token, optional TLS (and a client
//! certificate for agents that require mutual TLS).

use std::time::Duration;

use servescope_proto::v1::agent_client;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// How to reach one agent.
#[derive(Debug, Clone)]
pub struct AgentEndpoint {
    /// `HOST:PORT`, or a full `http://` / `https://` URL.
    pub address: String,
    pub token: Option<String>,
    /// PEM CA certificate to trust; setting it (or an https URL) turns TLS on.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Server name to verify (default: the host of `address`).
    pub tls_domain: Option<String>,
    /// Certificate and key this client presents (agents started with
    /// `--tls-client-ca`).
    pub tls_client: Option<ClientCert>,
    pub connect_timeout: Duration,
}

/// A client certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct ClientCert {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCert{..}")
    }
}

impl AgentEndpoint {
    pub fn new(address: impl Into<String>, token: Option<String>) -> Self {
        AgentEndpoint {
            address: address.into(),
            token,
            tls_ca_pem: None,
            tls_domain: None,
            tls_client: None,
            connect_timeout: Duration::from_secs(5),
        }
    }

    fn uri(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else if self.tls_ca_pem.is_some() || self.tls_client.is_some() {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        }
    }
}

/// Errors reaching an agent.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid agent address {address:?}: {message}")]
    Address { address: String, message: String },
    #[error("token contains characters not allowed in a header")]
    Token,
    #[error("cannot connect to agent {address}: {message}")]
    Connect { address: String, message: String },
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type AgentClient = agent_client::AgentClient<InterceptedService<Channel, Bearer>>;

/// Connects (eagerly, so an unreachable agent is reported now).
pub async fn connect(ep: &AgentEndpoint) -> Result<AgentClient, ConnectError> {
    let uri = ep.uri();
    let bad = |m: String| ConnectError::Address {
        address: ep.address.clone(),
        message: m,
    };
    let mut e = Endpoint::from_shared(uri.clone())
        .map_err(|x| bad(x.to_string()))?
        .connect_timeout(ep.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10));
    if uri.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &ep.tls_ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some(d) = &ep.tls_domain {
            tls = tls.domain_name(d.clone());
        }
        if let Some(c) = &ep.tls_client {
            tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
        }
        e = e
            .tls_config(tls)
            .map_err(|x| bad(crate::text::error_chain(&x)))?;
    }
    let channel = e.connect().await.map_err(|x| ConnectError::Connect {
        address: ep.address.clone(),
        message: crate::text::error_chain(&x),
    })?;
    let bearer = match &ep.token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse::<MetadataValue<_>>()
                .map_err(|_| ConnectError::Token)?,
        ),
        None => None,
    };
    Ok(
        agent_client::AgentClient::with_interceptor(channel, Bearer(bearer))
            .max_decoding_message_size(64 << 20),
    )
}
