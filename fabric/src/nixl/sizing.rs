//! The shape of one request's KV transfer as vLLM's NixlConnector posts it, from a
//! Hugging Face `config.json`: one descriptor per (layer, K or V, KV block), each of
//! block_size_tokens × KV heads per TP rank × head_dim × dtype bytes. MLA models
//! (DeepSeek: `kv_lora_rank`) keep one latent cache per layer instead of K and V.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizingError {
    #[error("model config is not JSON: {0}")]
    Json(String),
    #[error("model config has no usable `{0}`")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// One request's KV transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvShape {
    pub layers: u64,
    /// 2 (K and V) or 1 (MLA's latent cache).
    pub caches_per_layer: u64,
    pub kv_heads_per_rank: u64,
    pub head_dim: u64,
    pub dtype: String,
    pub dtype_bytes: u64,
    pub blocks_per_request: u64,
    pub descriptors_per_request: u64,
    pub bytes_per_descriptor: u64,
}

impl KvShape {
    pub fn bytes_per_request(&self) -> u64 {
        self.descriptors_per_request * self.bytes_per_descriptor
    }
}

/// Bytes of one element of a `torch_dtype` / `dtype` name.
pub fn dtype_bytes(name: &str) -> Option<u64> {
    match name.trim_start_matches("torch.") {
        "float32" | "float" | "fp32" => Some(4),
        "bfloat16" | "float16" | "half" | "bf16" | "fp16" => Some(2),
        "float8_e4m3fn" | "float8_e5m2" | "fp8" | "uint8" | "int8" => Some(1),
        _ => None,
    }
}

fn u(v: &Value, k: &'static str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64).filter(|&n| n > 0)
}

/// Sizes one request of `prompt_len` tokens for a model config, KV blocks of
/// `block_tokens` tokens, tensor parallelism `tp`. `kv_dtype` overrides the model's
/// dtype for the cache (vLLM's `--kv-cache-dtype fp8`).
pub fn kv_shape(
    config_json: &str,
    block_tokens: u64,
    tp: u64,
    prompt_len: u64,
    kv_dtype: Option<&str>,
) -> Result<KvShape, SizingError> {
    if block_tokens == 0 || tp == 0 || prompt_len == 0 {
        return Err(SizingError::Invalid(
            "block size, TP and prompt length must be positive".into(),
        ));
    }
    let root: Value =
        serde_json::from_str(config_json).map_err(|e| SizingError::Json(e.to_string()))?;
    // Multimodal configs keep the language model's under text_config.
    let c = match root.get("text_config") {
        Some(t) if t.get("num_hidden_layers").is_some() => t,
        _ => &root,
    };
    let layers = u(c, "num_hidden_layers").ok_or(SizingError::Missing("num_hidden_layers"))?;
    let dtype = kv_dtype
        .map(str::to_string)
        .or_else(|| {
            [c, &root].iter().find_map(|x| {
                x.get("torch_dtype")
                    .or_else(|| x.get("dtype"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        })
        .unwrap_or_else(|| "bfloat16".into());
    let dbytes = dtype_bytes(&dtype)
        .ok_or_else(|| SizingError::Invalid(format!("unknown dtype `{dtype}`")))?;
    let (caches, heads_per_rank, head_dim) = if let Some(rank) = u(c, "kv_lora_rank") {
        // MLA: one latent vector (plus the rope part) per token, the same on every rank.
        (1, 1, rank + u(c, "qk_rope_head_dim").unwrap_or(0))
    } else {
        let heads =
            u(c, "num_attention_heads").ok_or(SizingError::Missing("num_attention_heads"))?;
        let kv_heads = u(c, "num_key_value_heads").unwrap_or(heads);
        let head_dim = match u(c, "head_dim") {
            Some(d) => d,
            None => {
                let hidden = u(c, "hidden_size").ok_or(SizingError::Missing("head_dim"))?;
                if !hidden.is_multiple_of(heads) {
                    return Err(SizingError::Invalid(format!(
                        "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
                    )));
                }
                hidden / heads
            }
        };
        // With more ranks than KV heads, vLLM replicates: each rank holds one.
        (2, (kv_heads / tp).max(1), head_dim)
    };
    let blocks = prompt_len.div_ceil(block_tokens);
    Ok(KvShape {
        layers,
        caches_per_layer: caches,
        kv_heads_per_rank: heads_per_rank,
        head_dim,
        dtype,
        dtype_bytes: dbytes,
        blocks_per_request: blocks,
        descriptors_per_request: layers * caches * blocks,
        bytes_per_descriptor: block_tokens * heads_per_rank * head_dim * dbytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA3_70B: &str = include_str!("../../tests/data/config_llama3_70b.json");
    const QWEN3_235B: &str = include_str!("../../tests/data/config_qwen3_235b_a22b.json");

    #[test]
    fn llama3_70b_tp8() {
        // 80 layers, 64 heads, 8 KV heads, hidden 8192 (head_dim 128), bfloat16.
        let s = kv_shape(LLAMA3_70B, 16, 8, 8192, None).expect("shape");
        assert_eq!((s.layers, s.kv_heads_per_rank, s.head_dim), (80, 1, 128));
        assert_eq!(s.blocks_per_request, 512);
        assert_eq!(s.descriptors_per_request, 80 * 2 * 512);
        assert_eq!(s.bytes_per_descriptor, 16 * 128 * 2);
        assert_eq!(s.bytes_per_request(), 320 << 20);
        let t2 = kv_shape(LLAMA3_70B, 16, 2, 1000, None).expect("tp2");
        assert_eq!(t2.blocks_per_request, 63, "partial last block counts");
        assert_eq!(t2.bytes_per_descriptor, 16 * 4 * 128 * 2);
    }

    #[test]
    fn qwen3_235b_explicit_head_dim_and_tp_over_kv_heads() {
        // 94 layers, 4 KV heads, head_dim 128 (not hidden/heads = 4096/64 = 64).
        let s = kv_shape(QWEN3_235B, 16, 8, 4096, None).expect("shape");
        assert_eq!((s.layers, s.kv_heads_per_rank, s.head_dim), (94, 1, 128));
        assert_eq!(s.descriptors_per_request, 94 * 2 * 256);
        assert_eq!(s.bytes_per_descriptor, 4096);
        let fp8 = kv_shape(QWEN3_235B, 32, 4, 4096, Some("fp8")).expect("fp8");
        assert_eq!(fp8.bytes_per_descriptor, 32 * 128);
    }

    #[test]
    fn mla_and_bad_configs() {
        let ds = r#"{"num_hidden_layers": 61, "num_attention_heads": 128, "kv_lora_rank": 512,
                    "qk_rope_head_dim": 64, "torch_dtype": "bfloat16"}"#;
        let s = kv_shape(ds, 64, 8, 640, None).expect("mla");
        assert_eq!(s.descriptors_per_request, 61 * 10);
        assert_eq!(s.bytes_per_descriptor, 64 * 576 * 2);
        assert_eq!(
            kv_shape("{}", 16, 1, 1, None),
            Err(SizingError::Missing("num_hidden_layers"))
        );
        assert!(matches!(
            kv_shape("not json", 16, 1, 1, None),
            Err(SizingError::Json(_))
        ));
        let odd = r#"{"num_hidden_layers": 2, "num_attention_heads": 3, "hidden_size": 100}"#;
        assert!(matches!(
            kv_shape(odd, 16, 1, 1, None),
            Err(SizingError::Invalid(_))
        ));
    }
}
