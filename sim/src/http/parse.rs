//! Parsing an OpenAI completions or chat request body into what the simulator uses.

use serde_json::Value;

/// Parsed request fields.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub prompt: String,
    /// Token-id prompts: the ids as words (the prefix cache's tokens; `prompt` then
    /// only counts them).
    pub ids: Option<String>,
    pub max_tokens: Option<u32>,
    pub stream: bool,
    pub include_usage: bool,
    /// vLLM's `kv_transfer_params` (disaggregated prefill).
    pub kv: Option<Value>,
}

impl Parsed {
    /// The text whose words are the prompt's tokens.
    pub fn token_text(&self) -> &str {
        self.ids.as_deref().unwrap_or(&self.prompt)
    }
}

pub(crate) fn parse(body: &[u8], chat: bool) -> Result<Parsed, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let mut ids = None;
    let prompt = if chat {
        let msgs = v
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("\"messages\" must be an array")?;
        let mut s = String::new();
        for m in msgs {
            match m.get("content") {
                Some(Value::String(c)) => {
                    s.push_str(c);
                    s.push('\n');
                }
                Some(Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            s.push_str(t);
                            s.push('\n');
                        }
                    }
                }
                _ => return Err("each message needs a \"content\"".into()),
            }
        }
        s
    } else {
        match v.get("prompt") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                a[0].as_str().unwrap_or("").to_string()
            }
            Some(Value::Array(a)) if a.iter().all(Value::is_u64) => {
                // Token ids: one word per id, so the count is exact.
                let words: Vec<String> = a.iter().map(Value::to_string).collect();
                ids = Some(words.join(" "));
                vec!["t"; a.len()].join(" ")
            }
            _ => return Err("\"prompt\" must be a string or a list of token ids".into()),
        }
    };
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| v.get(*k))
        .map(|m| {
            m.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("max_tokens must be a positive integer")
        })
        .transpose()?;
    if max_tokens == Some(0) {
        return Err("max_tokens must be at least 1".into());
    }
    Ok(Parsed {
        prompt,
        ids,
        max_tokens,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        kv: v
            .get("kv_transfer_params")
            .filter(|k| k.is_object())
            .cloned(),
    })
}
