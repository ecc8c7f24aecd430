//! The experiment file (YAML). Schema:
//!
//! ```yaml
//! name: horizontal-scaling            # experiments are resumed by name
//! deployments:                        # one or more
//!   - name: r1
//!     endpoint: http://10.0.0.5:8000  # OpenAI-compatible base URL (ingress or proxy)
//!     gpus: 8                         # behind the endpoint (per-GPU normalisation)
//!     replicas: 1
//!     labels: {connector: nixl, tp: "8", placement: pack}   # free-form
//!     deploy:                         # optional: run before its points
//!       command: ./start.sh           #   a shell command, and/or
//!       ray_serve:                    #   a Ray Serve config through the dashboard REST API
//!         dashboard: http://head:8265
//!         config: serve.json          #   path (JSON), relative to this file
//!       ready_timeout_s: 600          #   then wait for GET /v1/models to answer 200
//!     teardown:                       # optional: after its points
//!       command: ./stop.sh
//!       ray_serve_delete: true
//! workload:
//!   api: completions                  # or chat
//!   model: my-model
//!   concurrency: [8, 16, 32]          # closed loop; or request_rate: [2.0, 4.0]
//!   concurrency_per_replica: true     # scale the load with each deployment's replicas
//!   lengths: ["1024:128", "128:1024"] # input:output tokens per request
//!   modes: [mixed]                    # mixed | prefill-only (output 1) | decode-only (shared cached prefix)
//!   num_prompts: 200                  # per point (or duration_s)
//!   warmup: 0
//!   trials: 3
//!   probe: true                       # correctness probe after each point
//! client:
//!   shards: 2                         # load split in this many shards
//!   agents: [10.0.0.9:7733, 10.0.0.10:7733]   # shards run on these agents (else here)
//!   token_file: /etc/servescope/token
//! agents: [10.0.0.5:7733]            # nodes to check and record (telemetry of each deployment's points)
//! analyses: [scaling, matrix, fabric_check]   # also: pd, startup
//! ```
//!
//! Errors name the line and the field: YAML and type errors come from the parser
//! (with the field's path), checks of values point at the line of the offending key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::exp::ExpError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub name: String,
    pub deployments: Vec<Deployment>,
    pub workload: WorkloadGrid,
    #[serde(default)]
    pub client: Client,
    /// Agents on the serving nodes: fabric preflight and telemetry recording.
    #[serde(default)]
    pub agents: Vec<String>,
    #[serde(default)]
    pub analyses: Vec<Analysis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub name: String,
    pub endpoint: String,
    #[serde(default = "one")]
    pub gpus: u32,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub deploy: Option<DeployStep>,
    #[serde(default)]
    pub teardown: Option<Teardown>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployStep {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub ray_serve: Option<RayServe>,
    #[serde(default = "ready_timeout")]
    pub ready_timeout_s: f64,
}

fn ready_timeout() -> f64 {
    600.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RayServe {
    pub dashboard: String,
    /// A Serve config file (JSON), relative to the experiment file.
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teardown {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub ray_serve_delete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Mixed,
    PrefillOnly,
    DecodeOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Analysis {
    Scaling,
    Matrix,
    Pd,
    Startup,
    /// `servescope fabric check` on the agents before the first point.
    FabricCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadGrid {
    #[serde(default = "completions")]
    pub api: String,
    pub model: String,
    #[serde(default)]
    pub concurrency: Vec<usize>,
    #[serde(default)]
    pub request_rate: Vec<f64>,
    #[serde(default)]
    pub concurrency_per_replica: bool,
    #[serde(default = "default_lengths")]
    pub lengths: Vec<String>,
    #[serde(default = "default_modes")]
    pub modes: Vec<Mode>,
    #[serde(default)]
    pub num_prompts: Option<usize>,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub warmup: usize,
    #[serde(default = "one_usize")]
    pub trials: usize,
    #[serde(default)]
    pub probe: bool,
}

fn completions() -> String {
    "completions".into()
}

fn default_lengths() -> Vec<String> {
    vec!["1024:128".into()]
}

fn default_modes() -> Vec<Mode> {
    vec![Mode::Mixed]
}

fn one_usize() -> usize {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    #[serde(default)]
    pub shards: Option<usize>,
    #[serde(default)]
    pub agents: Vec<String>,
    #[serde(default)]
    pub token_file: Option<String>,
}

/// `"1024:128"` → (1024, 128).
pub fn parse_lengths(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a > 0 && b > 0).then_some((a, b))
}

/// The 1-based line of the first `key:` found after line `after` (for value errors).
fn line_of(text: &str, key: &str, after: usize) -> usize {
    let pat = format!("{key}:");
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&pat)
        })
        .map_or(1, |(i, _)| i + 1)
}

/// Line of deployment `i`'s `- name:` item (or of `deployments:`).
fn deployment_line(text: &str, i: usize) -> usize {
    let start = line_of(text, "deployments", 0);
    let mut seen = 0;
    for (n, l) in text.lines().enumerate().skip(start) {
        if l.trim_start().starts_with("- ") && !l.starts_with("- ") {
            if seen == i {
                return n + 1;
            }
            seen += 1;
        }
    }
    start
}

fn err(line: usize, field: &str, msg: impl Into<String>) -> ExpError {
    ExpError::File {
        line,
        field: field.to_string(),
        message: msg.into(),
    }
}

/// Parses and checks an experiment file.
pub fn parse(text: &str) -> Result<ExperimentFile, ExpError> {
    let f: ExperimentFile = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        let msg = e.to_string();
        // serde_yaml prefixes the field's path ("workload.trials: invalid type …").
        let field = msg
            .split_once(": ")
            .filter(|(p, _)| !p.contains(' '))
            .map_or("", |(p, _)| p)
            .to_string();
        ExpError::File {
            line,
            field,
            message: msg,
        }
    })?;
    if f.name.trim().is_empty() || f.name.len() > 200 {
        return Err(err(
            line_of(text, "name", 0),
            "name",
            "must be 1..200 characters",
        ));
    }
    if f.deployments.is_empty() {
        return Err(err(
            line_of(text, "deployments", 0),
            "deployments",
            "give at least one deployment",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, d) in f.deployments.iter().enumerate() {
        let at = deployment_line(text, i);
        let field = |k: &str| format!("deployments[{i}].{k}");
        if d.name.is_empty() || !names.insert(d.name.as_str()) {
            return Err(err(
                at,
                &field("name"),
                format!("{:?} is empty or used twice", d.name),
            ));
        }
        if !(d.endpoint.starts_with("http://") || d.endpoint.starts_with("https://")) {
            return Err(err(
                line_of(text, "endpoint", at - 1),
                &field("endpoint"),
                format!("must be an http(s) URL (got {:?})", d.endpoint),
            ));
        }
        if d.gpus == 0 || d.replicas == 0 {
            let k = if d.gpus == 0 { "gpus" } else { "replicas" };
            return Err(err(
                line_of(text, k, at - 1),
                &field(k),
                "must be at least 1",
            ));
        }
        if let Some(s) = &d.deploy {
            if s.command.is_none() && s.ray_serve.is_none() {
                return Err(err(
                    line_of(text, "deploy", at - 1),
                    &field("deploy"),
                    "give a command or ray_serve",
                ));
            }
            if !(s.ready_timeout_s.is_finite() && s.ready_timeout_s > 0.0) {
                return Err(err(
                    line_of(text, "ready_timeout_s", at - 1),
                    &field("deploy.ready_timeout_s"),
                    "must be > 0",
                ));
            }
        }
    }
    let w = &f.workload;
    let wl = line_of(text, "workload", 0);
    if !matches!(w.api.as_str(), "completions" | "chat") {
        return Err(err(
            line_of(text, "api", wl - 1),
            "workload.api",
            format!("must be completions or chat (got {:?})", w.api),
        ));
    }
    if w.concurrency.is_empty() == w.request_rate.is_empty() {
        return Err(err(
            wl,
            "workload.concurrency",
            "give either concurrency or request_rate (a list)",
        ));
    }
    if let Some(i) = w.concurrency.iter().position(|&c| c == 0) {
        return Err(err(
            line_of(text, "concurrency", wl - 1),
            &format!("workload.concurrency[{i}]"),
            "must be at least 1",
        ));
    }
    if let Some(i) = w
        .request_rate
        .iter()
        .position(|r| !(r.is_finite() && *r > 0.0))
    {
        return Err(err(
            line_of(text, "request_rate", wl - 1),
            &format!("workload.request_rate[{i}]"),
            "must be > 0",
        ));
    }
    if let Some(i) = w.lengths.iter().position(|l| parse_lengths(l).is_none()) {
        return Err(err(
            line_of(text, "lengths", wl - 1),
            &format!("workload.lengths[{i}]"),
            format!("{:?} is not INPUT:OUTPUT tokens, both ≥ 1", w.lengths[i]),
        ));
    }
    if w.num_prompts.is_none() == w.duration_s.is_none() {
        return Err(err(
            wl,
            "workload.num_prompts",
            "give either num_prompts or duration_s",
        ));
    }
    if w.trials == 0 || w.modes.is_empty() {
        let k = if w.trials == 0 { "trials" } else { "modes" };
        return Err(err(
            line_of(text, k, wl - 1),
            &format!("workload.{k}"),
            "must not be 0 / empty",
        ));
    }
    if let Some(0) = f.client.shards {
        return Err(err(
            line_of(text, "shards", 0),
            "client.shards",
            "must be at least 1",
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: scaling
deployments:
  - name: r1
    endpoint: http://127.0.0.1:8001
    gpus: 1
  - name: r2
    endpoint: http://127.0.0.1:8002
    gpus: 2
    replicas: 2
    labels: {connector: nixl}
workload:
  model: m
  concurrency: [4, 8]
  concurrency_per_replica: true
  lengths: [\"64:16\"]
  num_prompts: 20
client:
  shards: 2
analyses: [scaling]
";

    #[test]
    fn a_good_file_parses_with_defaults() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.deployments[1].replicas, 2);
        assert_eq!(f.deployments[0].replicas, 1);
        assert_eq!(f.workload.modes, [Mode::Mixed]);
        assert_eq!(f.workload.trials, 1);
        assert_eq!(f.analyses, [Analysis::Scaling]);
    }

    fn bad(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ExpError::File {
                line,
                field,
                message,
            }) => (line, field, message),
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let (l, f, m) = bad(&GOOD.replace("    gpus: 2", "    gpus: two"));
        assert_eq!((l, f.as_str()), (8, "deployments[1].gpus"), "{m}");
        let (l, f, _) = bad(&GOOD.replace("  num_prompts: 20", "  num_prompts: 20\n  colour: red"));
        assert_eq!(l, 17);
        assert!(f.is_empty() || f.contains("workload"), "{f}");
        let (l, f, _) = bad(&GOOD.replace("[4, 8]", "[4, 0]"));
        assert_eq!((l, f.as_str()), (13, "workload.concurrency[1]"));
        let (l, f, _) = bad(&GOOD.replace("\"64:16\"", "\"64x16\""));
        assert_eq!((l, f.as_str()), (15, "workload.lengths[0]"));
        let (l, f, _) = bad(&GOOD.replace("http://127.0.0.1:8002", "127.0.0.1:8002"));
        assert_eq!((l, f.as_str()), (7, "deployments[1].endpoint"));
        let (l, f, _) = bad(&GOOD.replace("  - name: r2", "  - name: r1"));
        assert_eq!((l, f.as_str()), (6, "deployments[1].name"));
        let (l, _, m) = bad("name: [unclosed\n");
        assert_eq!(l, 1, "{m}");
        let (_, f, _) = bad(&GOOD.replace("  shards: 2", "  shards: 0"));
        assert_eq!(f, "client.shards");
    }
}
