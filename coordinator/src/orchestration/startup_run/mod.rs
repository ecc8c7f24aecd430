//! `servescope startup run`: the live experiment. Optionally starts the user's
//! command, polls `/health` until the endpoint answers, sends the first streaming
//! completion (the load client's request code), tails the given engine logs during
//! the window, and merges log phases and client phases into one
//! [`Timeline`](crate::analysis::startup::Timeline).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

mod render;
mod tail;
mod trial;

pub use render::{
    labeled, merge, merge_with, render_html, render_html_with, timeline_text, waterfall_text,
    AFTER_READY_S, CLIENT_SHARE_S,
};
use tail::Tail;
pub use trial::{ClientTimes, Trial};

use crate::analysis::startup::{LogParse, ParseOptions};
use servescope_loadgen::http::HttpClient;
use servescope_loadgen::request::{self, Api, Clock, Prompt, Target};
use servescope_loadgen::schedule::Slot;

/// Why a trial ended without a first answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("starting {cmd:?}: {message}")]
    Spawn { cmd: String, message: String },
    #[error(
        "the start command exited ({status}) after {after_s:.1} s, before the endpoint was ready"
    )]
    Exited { status: String, after_s: f64 },
    #[error("endpoint not ready within {timeout_s:.0} s (last /health: {last})")]
    NotReady { timeout_s: f64, last: String },
    #[error("first request failed: {0}")]
    Request(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Base URL, e.g. `http://127.0.0.1:8000`.
    pub endpoint: String,
    pub model: String,
    pub logs: Vec<PathBuf>,
    /// Read the logs from their start, not only what is appended during the trial.
    pub logs_from_start: bool,
    /// `sh -c` command started at the beginning of each trial and stopped at its end.
    pub start_cmd: Option<String>,
    /// From the start of a trial to the first answer.
    pub timeout: Duration,
    pub poll: Duration,
    pub api: Api,
    pub prompt: String,
    pub max_tokens: u32,
    /// How to read the logs' timestamps; `min_gap_s` also applies to the merged timeline.
    pub parse: ParseOptions,
}

impl RunOptions {
    pub fn new(endpoint: &str, model: &str, parse: ParseOptions) -> RunOptions {
        RunOptions {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            model: model.to_string(),
            logs: Vec::new(),
            logs_from_start: false,
            start_cmd: None,
            timeout: Duration::from_secs(1200),
            poll: DEFAULT_POLL,
            api: Api::Completions,
            prompt: "The first answer after a cold start is".into(),
            max_tokens: 16,
            parse,
        }
    }
}

/// Readiness poll interval: a refused connection costs microseconds, and every
/// interval is time the client adds to "→ first request".
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

type Get = Client<HttpConnector, Full<Bytes>>;

/// GET with a short timeout: status and (bounded) body, or why not.
async fn get(client: &Get, url: &str) -> Result<(u16, Bytes), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let req = hyper::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| crate::text::error_chain(&e))?;
        let status = resp.status().as_u16();
        let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| "no answer within 5 s".to_string())?
}

fn spawn(cmd: &str) -> Result<Child, RunError> {
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    let err = |e: std::io::Error| RunError::Spawn {
        cmd: cmd.to_string(),
        message: e.to_string(),
    };
    // The command's stdout goes to our stderr: stdout is for the waterfall.
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(err)?;
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .process_group(0)
        .spawn()
        .map_err(err)
}

/// SIGTERM to the command's process group, SIGKILL after 5 s.
async fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    for (sig, wait) in [("-TERM", 50), ("-KILL", 20)] {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        kill(sig, &group);
        for _ in 0..wait {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Whatever of the group is left (the shell may have gone first).
    kill("-KILL", &group);
    let _ = child.try_wait();
}

fn kill(sig: &str, group: &str) {
    let _ = Command::new("kill")
        .args([sig, "--", group])
        .stderr(Stdio::null())
        .status();
}

/// Runs one trial; `progress` gets the waiting lines. Never fails: what was
/// collected is kept, the reason is in [`Trial::error`].
pub async fn run_trial(o: &RunOptions, index: usize, progress: &mut dyn FnMut(&str)) -> Trial {
    let clock = Clock::new();
    let t0 = Instant::now();
    let mut c = ClientTimes {
        start_ns: clock.ns(t0),
        ..Default::default()
    };
    let mut tails: Vec<Tail> = o
        .logs
        .iter()
        .map(|p| Tail::new(p, &o.parse, o.logs_from_start))
        .collect();
    let mut child = None;
    let mut error = None;
    if let Some(cmd) = &o.start_cmd {
        match spawn(cmd) {
            Ok(ch) => {
                c.cmd_start_ns = Some(clock.ns(Instant::now()));
                child = Some(ch);
            }
            Err(e) => error = Some(e),
        }
    }
    if error.is_none() {
        if let Err(e) = wait_and_ask(o, &clock, &mut c, &mut tails, &mut child, progress).await {
            error = Some(e);
        }
    }
    // Let the engine write what follows the answer ("Added request …").
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs: Vec<LogParse> = tails.into_iter().map(Tail::finish).collect();
    if let Some(ch) = child.as_mut() {
        stop(ch).await;
    }
    Trial {
        index,
        timeline: merge(&logs, &c, o.parse.min_gap_s),
        logs,
        client: c,
        error: error.map(|e| e.to_string()),
    }
}

async fn wait_and_ask(
    o: &RunOptions,
    clock: &Clock,
    c: &mut ClientTimes,
    tails: &mut [Tail],
    child: &mut Option<Child>,
    progress: &mut dyn FnMut(&str),
) -> Result<(), RunError> {
    let start = Instant::now();
    let deadline = start + o.timeout;
    let get_client: Get = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut last: String;
    let mut said = start;
    loop {
        tails.iter_mut().for_each(Tail::poll);
        if let Some(ch) = child.as_mut() {
            if let Ok(Some(st)) = ch.try_wait() {
                return Err(RunError::Exited {
                    status: st.to_string(),
                    after_s: start.elapsed().as_secs_f64(),
                });
            }
        }
        c.health_polls += 1;
        let sent = clock.ns(Instant::now());
        match get(&get_client, &format!("{}/health", o.endpoint)).await {
            Ok((200, _)) => break,
            Ok((s, _)) => last = s.to_string(),
            Err(e) => last = e,
        }
        c.last_not_ready_ns = Some(sent);
        if Instant::now() >= deadline {
            return Err(RunError::NotReady {
                timeout_s: o.timeout.as_secs_f64(),
                last,
            });
        }
        if said.elapsed() >= Duration::from_secs(2) {
            said = Instant::now();
            let after = start.elapsed().as_secs_f64();
            progress(&format!("waiting for /health: {last} after {after:.1} s"));
        }
        tokio::time::sleep(o.poll).await;
    }
    c.health_ok_ns = Some(clock.ns(Instant::now()));
    progress(&format!(
        "/health: 200 after {:.1} s",
        start.elapsed().as_secs_f64()
    ));
    if let Ok((200, body)) = get(&get_client, &format!("{}/v1/models", o.endpoint)).await {
        let listed = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("data")?.as_array().cloned())
            .is_some_and(|d| {
                d.iter()
                    .any(|m| m.get("id").and_then(|i| i.as_str()) == Some(&o.model))
            });
        if !listed {
            progress(&format!("warning: /v1/models does not list {:?}", o.model));
        }
        c.model_listed = Some(listed);
    }
    let client = HttpClient::new(1);
    let target = Target {
        base_url: o.endpoint.clone(),
        api: o.api,
        model: o.model.clone(),
        request_id_prefix: "servescope-startup-".into(),
        sse_limits: Default::default(),
    };
    let prompt = Prompt {
        text: o.prompt.clone(),
        input_tokens: 0,
        max_tokens: o.max_tokens,
        ignore_eos: false,
        expect_prefix: None,
    };
    loop {
        c.attempts += 1;
        let slot = Slot {
            index: c.attempts as usize - 1,
            scheduled: Instant::now(),
            dispatch_lag: Duration::ZERO,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let ask = request::execute(&client, &target, &prompt, slot, clock);
        let Ok(out) = tokio::time::timeout(left, ask).await else {
            return Err(RunError::Request(format!(
                "no answer within the {:.0} s timeout",
                o.timeout.as_secs_f64()
            )));
        };
        let r = &out.record;
        c.status = out.status;
        c.first_request_ns = Some(r.send_ns);
        if r.error.is_none() {
            c.first_token_ns = r.first_token_ns.or(r.chunks.first().map(|ch| ch.at_ns));
            c.answer_ns = r.last_byte_ns.or(Some(r.finished_ns));
            c.output_tokens = r.output_tokens;
            return Ok(());
        }
        let why = out
            .error_detail
            .clone()
            .unwrap_or_else(|| format!("{:?}", r.error));
        // A proxy in front of a scaling deployment may refuse the first requests.
        let retry = matches!(out.status, None | Some(502..=504));
        if !retry || Instant::now() >= deadline {
            return Err(RunError::Request(match out.status {
                Some(s) => format!("HTTP {s}: {why}"),
                None => why,
            }));
        }
        progress(&format!("first request: {why}; retrying"));
        tokio::time::sleep(o.poll).await;
    }
}
