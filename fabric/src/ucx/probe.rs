//! `ProbeEndpoint` for [`UcxEndpoint`]: connect through the endpoint's setup, run
//! the in-band protocol, and refresh the transport truth after each run (UCX may
//! pick its lanes lazily).

use super::endpoint::UcxEndpoint;
use super::protocol;
use crate::endpoint::{PeerInfo, ProbeEndpoint};
use crate::error::FabricError;
use crate::plan::{ProbePlan, SizeResult, TransportTruth};

impl ProbeEndpoint for UcxEndpoint {
    fn local_info(&self) -> PeerInfo {
        self.local()
    }

    fn connect(&mut self, peer: &PeerInfo) -> Result<(), FabricError> {
        self.connect_peer(peer)
    }

    fn run_driver(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<SizeResult>, FabricError> {
        let r = protocol::drive(self, plan, cancel);
        self.refresh_truth();
        r
    }

    fn run_responder(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(), FabricError> {
        let r = protocol::respond(self, plan, cancel);
        self.refresh_truth();
        r
    }

    fn truth(&self) -> TransportTruth {
        self.truth.clone()
    }
}
