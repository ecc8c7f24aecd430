//! Sending a point's shards: in this process, or each on an agent (`RunLoadShard`)
//! so that client capacity scales with the fleet. Shards start together: the
//! coordinator picks a start time a moment ahead and gives each agent that time on
//! the agent's own clock (its measured offset applied); the records that come back
//! are moved onto the coordinator's clock the same way before they are pooled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope_loadgen::shard::{run_shard, ShardRecord, ShardSpec};
use servescope_proto::v1::LoadShardRequest;

use crate::analysis::exp::ExpError;
use crate::orchestration::connect::{connect, AgentEndpoint};
use servescope_loadgen::request::Outcome;

/// Where shards run.
#[derive(Debug, Clone)]
pub enum Client {
    Local,
    /// Shard i runs on agent i mod n.
    Agents(Vec<AgentEndpoint>),
}

/// How far ahead shards are told to start (connections and clock pings first).
const LEAD: Duration = Duration::from_millis(500);

/// The point's requests, pooled, on the coordinator's clock; plus problems met
/// (a shard that failed part-way keeps what it sent).
pub async fn send(client: &Client, mut specs: Vec<ShardSpec>) -> (Vec<Outcome>, Vec<String>) {
    let start = servescope_proto::now_ns() + LEAD.as_nanos() as u64;
    let out: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut problems = Vec::new();
    let mut tasks = Vec::new();
    for (i, spec) in specs.drain(..).enumerate() {
        let out = Arc::clone(&out);
        match client {
            Client::Local => {
                let mut spec = spec;
                spec.start_at_ns = Some(start);
                tasks.push(tokio::spawn(async move {
                    let sink = Arc::clone(&out);
                    run_shard(&spec, move |r| {
                        sink.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(r.into_outcome(0));
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("local shard {i}: {e}"))
                }));
            }
            Client::Agents(agents) => {
                let ep = agents[i % agents.len()].clone();
                tasks.push(tokio::spawn(async move {
                    on_agent(&ep, spec, start, &out)
                        .await
                        .map_err(|e| e.to_string())
                }));
            }
        }
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(e),
            Err(e) => problems.push(format!("shard task: {e}")),
        }
    }
    let mut v = std::mem::take(&mut *out.lock().unwrap_or_else(|e| e.into_inner()));
    v.sort_by_key(|o| o.index);
    (v, problems)
}

/// One shard on one agent.
async fn on_agent(
    ep: &AgentEndpoint,
    mut spec: ShardSpec,
    start: u64,
    out: &Mutex<Vec<Outcome>>,
) -> Result<(), ExpError> {
    let fail = |m: String| ExpError::Shard {
        agent: ep.address.clone(),
        message: m,
    };
    let mut c = connect(ep).await.map_err(|e| fail(e.to_string()))?;
    let off = crate::orchestration::clock::measure(&mut c, 8)
        .await
        .map_err(|e| fail(format!("clock offset: {}", e.message())))?;
    let offset = off.offset_ns;
    spec.start_at_ns = Some((start as i64 + offset).max(0) as u64);
    let mut stream = c
        .run_load_shard(LoadShardRequest {
            spec: Some((&spec).into()),
        })
        .await
        .map_err(|e| fail(format!("RunLoadShard: {}", e.message())))?
        .into_inner();
    let mut done = false;
    loop {
        match stream.message().await {
            Ok(Some(ev)) => {
                let mut batch = Vec::with_capacity(ev.records.len());
                for r in &ev.records {
                    let rec: ShardRecord = serde_json::from_str(r)
                        .map_err(|e| fail(format!("a record is not valid: {e}")))?;
                    batch.push(rec.into_outcome(offset));
                }
                out.lock().unwrap_or_else(|e| e.into_inner()).extend(batch);
                if ev.done {
                    done = true;
                    if !ev.error.is_empty() {
                        return Err(fail(ev.error));
                    }
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Err(fail(format!("stream broke: {}", e.message()))),
        }
    }
    if done {
        Ok(())
    } else {
        Err(fail(
            "stream ended before the shard said it was done".into(),
        ))
    }
}
