//! Imports of load tools' result files: GuideLLM's JSON export and vLLM's
//! `bench serve` JSON.

pub mod guidellm;
pub mod vllm_json;
