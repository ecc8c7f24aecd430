//! Schema and migrations (PRAGMA user_version).

use rusqlite::Connection;

use super::{Result, StoreError};

/// Current schema version.
pub const VERSION: i64 = 3;

const V1: &str = "
CREATE TABLE runs(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER,
    status TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE agents(
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL,
    hostname TEXT NOT NULL,
    instance INTEGER NOT NULL,
    UNIQUE(address, hostname, instance)
);
CREATE TABLE run_agents(
    run_id INTEGER NOT NULL REFERENCES runs(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    offset_ns INTEGER,
    offset_error_ns INTEGER,
    rtt_ns INTEGER,
    reconnects INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(run_id, agent_id)
);
CREATE TABLE inventories(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    t_ns INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE clock_offsets(
    run_id INTEGER NOT NULL REFERENCES runs(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    t_ns INTEGER NOT NULL,
    offset_ns INTEGER NOT NULL,
    error_ns INTEGER NOT NULL,
    rtt_ns INTEGER NOT NULL,
    exchanges INTEGER NOT NULL
);
CREATE TABLE samples(
    run_id INTEGER NOT NULL,
    agent_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    t_ns INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY(run_id, agent_id, seq)
) WITHOUT ROWID;
CREATE TABLE gaps(
    run_id INTEGER NOT NULL REFERENCES runs(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    t_ns INTEGER NOT NULL,
    requested_from_seq INTEGER NOT NULL,
    resumed_at_seq INTEGER NOT NULL,
    lost INTEGER NOT NULL
);
";

/// Load runs: one row per measured point (a concurrency or rate, a trial), one row
/// per request with its full record (JSON, so later issues can join by request id).
const V2: &str = "
CREATE TABLE load_points(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    point INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    label TEXT NOT NULL,
    config TEXT NOT NULL,
    aggregate TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER NOT NULL
);
CREATE TABLE requests(
    point_id INTEGER NOT NULL REFERENCES load_points(id),
    idx INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    warmup INTEGER NOT NULL,
    status INTEGER,
    error_class TEXT,
    error_detail TEXT,
    record TEXT NOT NULL,
    usage TEXT,
    server_metrics TEXT,
    dispatch_lag_ns INTEGER NOT NULL,
    PRIMARY KEY(point_id, idx, warmup)
) WITHOUT ROWID;
CREATE INDEX requests_by_id ON requests(request_id);
";

/// v3: fabric probes (one row per probe, evidence as encoded ProbeSummary) and their per-size results.
const V3: &str = "
CREATE TABLE fabric_probes(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    from_agent TEXT NOT NULL,
    to_agent TEXT NOT NULL,
    transport TEXT NOT NULL,
    error TEXT,
    driver_pb BLOB,
    responder_pb BLOB
);
CREATE TABLE fabric_results(
    probe_id INTEGER NOT NULL REFERENCES fabric_probes(id),
    size INTEGER NOT NULL,
    op TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    seconds REAL NOT NULL,
    bandwidth_bps REAL NOT NULL,
    messages_per_s REAL NOT NULL,
    latency_p50_ns INTEGER,
    latency_p99_ns INTEGER,
    PRIMARY KEY(probe_id, size, op)
) WITHOUT ROWID;
";

pub fn migrate(conn: &Connection) -> Result<()> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if v > VERSION {
        return Err(StoreError::SchemaTooNew {
            found: v,
            supported: VERSION,
        });
    }
    if v < 1 {
        conn.execute_batch(&format!("BEGIN; {V1} PRAGMA user_version = 1; COMMIT;"))?;
    }
    if v < 2 {
        conn.execute_batch(&format!("BEGIN; {V2} PRAGMA user_version = 2; COMMIT;"))?;
    }
    if v < 3 {
        conn.execute_batch(&format!("BEGIN; {V3} PRAGMA user_version = 3; COMMIT;"))?;
    }
    Ok(())
}
