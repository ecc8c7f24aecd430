//! What one trial of `startup run` yields.

use serde::Serialize;

use crate::analysis::startup::logparse::LogParse;
use crate::analysis::startup::phase::Timeline;

/// The client's view of a trial (ns on this host's clock).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientTimes {
    pub start_ns: u64,
    /// The start command was spawned.
    pub cmd_start_ns: Option<u64>,
    /// First `/health` that answered 200.
    pub health_ok_ns: Option<u64>,
    /// When the last `/health` poll before that one was sent (it failed): the
    /// endpoint became ready between the two, so the polling delayed the first
    /// request by at most `health_ok_ns − last_not_ready_ns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_not_ready_ns: Option<u64>,
    pub health_polls: u32,
    /// `/v1/models` lists the model.
    pub model_listed: Option<bool>,
    pub first_request_ns: Option<u64>,
    pub first_token_ns: Option<u64>,
    /// Last byte of the first answer.
    pub answer_ns: Option<u64>,
    pub status: Option<u16>,
    pub output_tokens: u64,
    pub attempts: u32,
}

/// One trial: merged timeline, the per-log parses, the client times.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub index: usize,
    pub timeline: Timeline,
    pub logs: Vec<LogParse>,
    pub client: ClientTimes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
