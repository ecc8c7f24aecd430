//! Startup phases from the log lines the agents streamed during a recorded run
//! (`Event { kind: "startup_log", source: <file>, message: <line> }`, pushed by the
//! agent's startup watcher): lines are grouped by (agent, file) in the order the
//! agent read them and fed to the log parser.
//!
//! Phase times come from the lines' own timestamps (the host's clock, read with
//! [`ParseOptions::utc_offset_s`]); each timeline names its host and the agent's
//! clock offset, and each phase keeps the agent's receive time of its last evidence
//! line as the `agent_t_ns` attribute.

use std::collections::BTreeMap;

use servescope_proto::v1::sample;

use super::logparse::{LogParse, LogParser};
use super::options::ParseOptions;
use crate::store::{Store, StoreError};

/// The event kind the agent's startup watcher sends.
pub const KIND: &str = "startup_log";
/// Most files kept per run (the agent follows at most 256 per node).
pub const MAX_SOURCES: usize = 4096;
/// Most lines kept per file.
pub const MAX_LINES: usize = 200_000;

/// The lines one agent streamed from one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLog {
    pub agent_id: i64,
    /// Path of the file on the agent's node.
    pub source: String,
    /// (agent receive time ns, line), in the order the agent read them.
    pub lines: Vec<(u64, String)>,
    /// Lines past [`MAX_LINES`] that were not kept.
    pub dropped: usize,
}

/// The parse of one streamed file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentLogParse {
    pub agent_id: i64,
    pub source: String,
    /// Agent receive time of the first and last line.
    pub first_t_ns: Option<u64>,
    pub last_t_ns: Option<u64>,
    pub parse: LogParse,
}

/// Groups a run's `startup_log` events by (agent, file), in stored order.
pub fn collect(store: &Store, run: i64) -> Result<Vec<AgentLog>, StoreError> {
    let mut by: BTreeMap<(i64, String), AgentLog> = BTreeMap::new();
    store.for_each_sample(run, |s| {
        let Some(sample::Data::Event(e)) = &s.sample.data else {
            return Ok(());
        };
        if e.kind != KIND {
            return Ok(());
        }
        let key = (s.agent_id, e.source.clone());
        if !by.contains_key(&key) && by.len() >= MAX_SOURCES {
            return Ok(());
        }
        let log = by.entry(key).or_insert_with(|| AgentLog {
            agent_id: s.agent_id,
            source: e.source.clone(),
            ..AgentLog::default()
        });
        if log.lines.len() < MAX_LINES {
            log.lines.push((s.sample.t_ns, e.message.clone()));
        } else {
            log.dropped += 1;
        }
        Ok(())
    })?;
    Ok(by.into_values().collect())
}

/// Parses one streamed file. `host` names the clock the lines were written on;
/// `offset_ns` is the agent's clock offset (coordinator time = agent time − offset).
pub fn parse_log(
    log: &AgentLog,
    opts: &ParseOptions,
    host: Option<String>,
    offset_ns: Option<i64>,
) -> AgentLogParse {
    let mut o = opts.clone();
    o.host = host.clone().or(o.host);
    let mut p = LogParser::new(o);
    for (_, l) in &log.lines {
        p.push_line(l);
    }
    let mut parse = p.finish(&log.source);
    if log.dropped > 0 {
        parse.warnings.push(format!(
            "{} streamed line(s) past {MAX_LINES} not parsed",
            log.dropped
        ));
    }
    let tl = &mut parse.timeline;
    if tl.host.is_none() {
        tl.host = host;
    }
    if let Some(off) = offset_ns {
        tl.clock_offset_ns = off.saturating_neg();
    }
    for ph in &mut tl.phases {
        let last = ph
            .lines
            .iter()
            .filter_map(|&n| n.checked_sub(1).and_then(|i| log.lines.get(i)))
            .map(|(t, _)| *t)
            .max();
        if let Some(t) = last {
            ph.attrs.insert("agent_t_ns".into(), t.to_string());
        }
    }
    AgentLogParse {
        agent_id: log.agent_id,
        source: log.source.clone(),
        first_t_ns: log.lines.first().map(|l| l.0),
        last_t_ns: log.lines.last().map(|l| l.0),
        parse,
    }
}

/// Parses every file the agents streamed during a run. Timelines are labelled
/// `host:path` and carry the host and its clock offset from the run's agents.
pub fn parse_run(
    store: &Store,
    run: i64,
    opts: &ParseOptions,
) -> Result<Vec<AgentLogParse>, StoreError> {
    let agents: BTreeMap<i64, (String, Option<i64>)> = store
        .run_agents(run)?
        .into_iter()
        .map(|a| (a.agent_id, (a.hostname, a.offset_ns)))
        .collect();
    Ok(collect(store, run)?
        .iter()
        .map(|log| {
            let (host, off) = agents
                .get(&log.agent_id)
                .map_or((None, None), |(h, o)| (Some(h.clone()), *o));
            let mut r = parse_log(log, opts, host.clone(), off);
            r.parse.name = match host {
                Some(h) => format!("{h}:{}", log.source),
                None => format!("agent {}:{}", log.agent_id, log.source),
            };
            r
        })
        .collect())
}
