//! Bearer-token authentication for every RPC (and /metrics): `authorization:
//! Bearer <token>`, compared in constant time. No token configured means the
//! operator chose --insecure-no-auth on loopback (config validation enforces it).

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Checks `authorization` headers against the configured token.
#[derive(Clone)]
pub struct TokenCheck {
    token: Option<Arc<str>>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Wrong,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "missing authorization: send 'authorization: Bearer <token>'",
            Refusal::Malformed => "malformed authorization header: expected 'Bearer <token>'",
            Refusal::Wrong => "wrong token",
        }
    }
}

/// Constant-time byte comparison (`subtle`: no early exit, no data-dependent
/// branch the optimiser could introduce); only the length is not secret.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

impl TokenCheck {
    pub fn new(token: Option<String>) -> Self {
        TokenCheck {
            token: token.map(Arc::from),
        }
    }

    /// Checks the value of an `authorization` header (None: header absent).
    pub fn check_header(&self, header: Option<&[u8]>) -> Result<(), Refusal> {
        let Some(tok) = &self.token else {
            return Ok(());
        };
        let h = header.ok_or(Refusal::Missing)?;
        let rest = h
            .strip_prefix(b"Bearer ")
            .or_else(|| h.strip_prefix(b"bearer "))
            .ok_or(Refusal::Malformed)?;
        if ct_eq(rest.trim_ascii(), tok.as_bytes()) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }

    /// tonic interceptor form.
    #[allow(clippy::result_large_err)]
    pub fn intercept(&self, req: Request<()>) -> Result<Request<()>, Status> {
        let h = req.metadata().get("authorization").map(|v| v.as_bytes());
        self.check_header(h)
            .map_err(|r| Status::unauthenticated(r.message()))?;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bearer() {
        let c = TokenCheck::new(Some("abc".into()));
        assert_eq!(c.check_header(None), Err(Refusal::Missing));
        assert_eq!(c.check_header(Some(b"abc")), Err(Refusal::Malformed));
        assert_eq!(c.check_header(Some(b"Bearer abd")), Err(Refusal::Wrong));
        assert_eq!(c.check_header(Some(b"Bearer ab")), Err(Refusal::Wrong));
        assert_eq!(c.check_header(Some(b"Bearer abc")), Ok(()));
        assert_eq!(c.check_header(Some(b"Bearer abcd")), Err(Refusal::Wrong));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"a", b""));
        let open = TokenCheck::new(None);
        assert_eq!(open.check_header(None), Ok(()));
    }
}
