//! What goes into and out of the engine: a generation request, its streamed
//! output, a refusal, and the instance's role.

/// What an engine instance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Prefill and decode in one instance (with `pd` set: both stages and the
    /// transfer simulated inside it).
    Unified,
    /// A prefill instance of a disaggregated deployment (`kv_role: kv_producer`).
    Prefill,
    /// A decode instance (`kv_role: kv_consumer`): pulls the KV cache from P.
    Decode,
}

/// A KV cache to pull from a prefill instance (`kv_transfer_params` from P).
#[derive(Debug, Clone)]
pub struct RemoteKv {
    pub engine_id: String,
    /// P's request id (`remote_request_id`), whose blocks are released after the read.
    pub request_id: String,
    /// Prompt tokens whose KV cache is moved.
    pub tokens: u32,
}

/// One generation request, as the HTTP layer parsed it.
#[derive(Debug, Clone)]
pub struct GenRequest {
    pub id: String,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub counting: Option<u64>,
    /// Decode instance: the KV cache to pull first.
    pub remote: Option<RemoteKv>,
    /// The client's `x-request-id` (ground truth key).
    pub client_id: String,
    /// The prompt's chained block hashes for the prefix cache
    /// ([`crate::Engine::prefix_blocks`]; empty without a cache).
    pub prefix_blocks: Vec<u64>,
}

/// What the engine emits for a request, in order.
#[derive(Debug)]
pub enum Out {
    /// Chunks of output text, in order (each one streamed event).
    Chunks(Vec<String>),
    /// The stream must be cut here (truncation fault): no more data, no [DONE].
    Cut,
    /// Finished: usage and vLLM's per-request `metrics` block.
    Done {
        prompt_tokens: u32,
        completion_tokens: u32,
        /// Prompt tokens served from the prefix cache (`None` without a cache).
        cached_tokens: Option<u32>,
        metrics: serde_json::Value,
    },
}

/// Why a request was refused before generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Injected server error.
    Injected,
    /// The waiting queue is full.
    Overloaded,
}
