//! Schema and migrations (PRAGMA user_version).

use rusqlite::Connection;

use super::{Result, StoreError};

/// Current schema version.
pub const VERSION: i64 = 9;

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

/// v4: the engines' `/metrics` scrapes of a run (raw bodies, or why none) and the
/// request spans the OTLP receiver collected (JSON of `otlp::RequestSpan`).
const V4: &str = "
CREATE TABLE engine_scrapes(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    role TEXT NOT NULL,
    phase TEXT NOT NULL,
    t_ns INTEGER NOT NULL,
    body TEXT,
    error TEXT
);
CREATE INDEX engine_scrapes_by_run ON engine_scrapes(run_id, t_ns);
CREATE TABLE request_spans(
    run_id INTEGER NOT NULL REFERENCES runs(id),
    request_id TEXT,
    service TEXT NOT NULL,
    host TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX request_spans_by_request ON request_spans(run_id, request_id);
";

/// Each version's DDL, in order: entry `i` takes the schema from `i` to `i + 1`.
/// v5: experiments (one row per experiment file name) and their points: each point
/// is stored with its run in one transaction, so an interrupted experiment resumes
/// without duplicates.
const V5: &str = "
CREATE TABLE experiments(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE exp_points(
    exp_id INTEGER NOT NULL REFERENCES experiments(id),
    key TEXT NOT NULL,
    deployment TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    point_id INTEGER NOT NULL REFERENCES load_points(id),
    status TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY(exp_id, key)
) WITHOUT ROWID;
";

/// v6: links between runs become columns (they were keys of `args`); old rows get
/// them from their `args`, which keep what they held.
const V6: &str = "
ALTER TABLE runs ADD COLUMN telemetry_run INTEGER;
ALTER TABLE runs ADD COLUMN fabric_run INTEGER;
ALTER TABLE runs ADD COLUMN experiment_id INTEGER;
UPDATE runs SET telemetry_run = json_extract(args, '$.telemetry_run'),
                fabric_run = json_extract(args, '$.fabric_run')
 WHERE json_valid(args);
UPDATE runs SET experiment_id =
    (SELECT e.id FROM experiments e WHERE e.name = json_extract(runs.args, '$.experiment'))
 WHERE json_valid(args) AND json_extract(args, '$.experiment') IS NOT NULL;
";

/// v7: a NIXL-level probe's per-transfer timing columns (encoded NixlXferStats) per result.
const V7: &str = "
ALTER TABLE fabric_results ADD COLUMN nixl_pb BLOB;
";

/// v8: resuming from the store. Per run and agent the last sequence accounted for
/// (stored, or counted lost in a gap), written in the transaction of its samples;
/// agent restarts within a run (the agent row before and after); the recording
/// process of each run (host, boot, pid, start time) to tell a dead recorder.
/// Old stores get their cursors from their samples and gaps.
const V8: &str = "
CREATE TABLE agent_cursors(
    run_id INTEGER NOT NULL REFERENCES runs(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    last_seq INTEGER NOT NULL,
    PRIMARY KEY(run_id, agent_id)
) WITHOUT ROWID;
INSERT INTO agent_cursors(run_id, agent_id, last_seq)
    SELECT run_id, agent_id, MAX(last_seq) FROM (
        SELECT run_id, agent_id, MAX(seq) AS last_seq FROM samples GROUP BY run_id, agent_id
        UNION ALL
        SELECT run_id, agent_id, MAX(resumed_at_seq) - 1 FROM gaps GROUP BY run_id, agent_id
    ) GROUP BY run_id, agent_id;
CREATE TABLE agent_restarts(
    run_id INTEGER NOT NULL REFERENCES runs(id),
    before_agent_id INTEGER NOT NULL REFERENCES agents(id),
    after_agent_id INTEGER NOT NULL REFERENCES agents(id),
    t_ns INTEGER NOT NULL
);
ALTER TABLE runs ADD COLUMN recorder_host TEXT;
ALTER TABLE runs ADD COLUMN recorder_boot TEXT;
ALTER TABLE runs ADD COLUMN recorder_pid INTEGER;
ALTER TABLE runs ADD COLUMN recorder_start INTEGER;
";

/// v9: each probe result's contents check: verified (1), failed to verify or not
/// asked (0), and why it could not be verified where it was asked.
const V9: &str = "
ALTER TABLE fabric_results ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fabric_results ADD COLUMN unverified TEXT NOT NULL DEFAULT '';
";

const STEPS: [&str; VERSION as usize] = [V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// Brings the schema to [`VERSION`], one transaction per version.
pub fn migrate(conn: &Connection) -> Result<()> {
    migrate_to(conn, VERSION)
}

/// Brings the schema to `target` (≤ [`VERSION`]); tests build old stores with it.
pub(super) fn migrate_to(conn: &Connection, target: i64) -> Result<()> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if v > VERSION {
        return Err(StoreError::SchemaTooNew {
            found: v,
            supported: VERSION,
        });
    }
    for (i, ddl) in STEPS.iter().enumerate() {
        let next = i as i64 + 1;
        if v >= next || next > target {
            continue;
        }
        // Two processes opening a new store at once: the write lock first, then
        // the version again, so the second finds the step done instead of failing
        // on tables that exist.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let now: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let step = if now >= next {
            conn.execute_batch("COMMIT")
        } else {
            conn.execute_batch(&format!("{ddl} PRAGMA user_version = {next}; COMMIT;"))
        };
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version")
    }

    #[test]
    fn a_version_3_store_migrates_to_4_and_keeps_its_runs() {
        let conn = Connection::open_in_memory().expect("open");
        migrate_to(&conn, 3).expect("v3");
        assert_eq!(version(&conn), 3);
        conn.execute(
            "INSERT INTO runs(kind, label, started_ns, status) VALUES ('load', 'old', 1, 'done')",
            [],
        )
        .expect("insert");
        let missing: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'engine_scrapes'",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(missing, 0);
        migrate(&conn).expect("v4");
        assert_eq!(version(&conn), VERSION);
        let label: String = conn
            .query_row("SELECT label FROM runs", [], |r| r.get(0))
            .expect("run kept");
        assert_eq!(label, "old");
        for t in ["engine_scrapes", "request_spans"] {
            let n: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .expect("new table");
            assert_eq!(n, 0);
        }
        migrate(&conn).expect("idempotent");
        assert_eq!(version(&conn), VERSION);
    }

    #[test]
    fn a_version_5_store_gets_its_run_links_from_args() {
        let conn = Connection::open_in_memory().expect("open");
        migrate_to(&conn, 5).expect("v5");
        conn.execute_batch(
            r#"INSERT INTO experiments(name, file, created_ns, status) VALUES ('e', '', 1, 'done');
               INSERT INTO runs(kind, label, started_ns, status, args)
                 VALUES ('pd', 'p', 1, 'done', '{"endpoint":"x","telemetry_run":2,"fabric_run":3}');
               INSERT INTO runs(kind, label, started_ns, status, args)
                 VALUES ('fabric-check', 'e: fabric preflight', 1, 'done', '{"experiment":"e","findings":[]}');
               INSERT INTO runs(kind, label, started_ns, status, args)
                 VALUES ('record', 'r', 1, 'done', 'not json');"#,
        )
        .expect("old rows");
        migrate(&conn).expect("v6");
        assert_eq!(version(&conn), VERSION);
        let links = |id: i64| -> (Option<i64>, Option<i64>, Option<i64>) {
            conn.query_row(
                "SELECT telemetry_run, fabric_run, experiment_id FROM runs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("row")
        };
        assert_eq!(links(1), (Some(2), Some(3), None));
        assert_eq!(links(2), (None, None, Some(1)));
        assert_eq!(links(3), (None, None, None));
    }

    #[test]
    fn a_version_7_store_gets_cursors_from_its_samples_and_gaps() {
        let conn = Connection::open_in_memory().expect("open");
        migrate_to(&conn, 7).expect("v7");
        conn.execute_batch(
            "INSERT INTO runs(kind, started_ns, status) VALUES ('record', 1, 'running');
             INSERT INTO agents(address, hostname, instance) VALUES ('a', 'h', 1), ('b', 'h', 2);
             INSERT INTO samples VALUES (1, 1, 3, 0, 0, x''), (1, 1, 4, 0, 0, x''),
                                        (1, 2, 2, 0, 0, x'');
             INSERT INTO gaps VALUES (1, 2, 0, 3, 10, 7);",
        )
        .expect("old rows");
        migrate(&conn).expect("v8");
        let mut st = conn
            .prepare("SELECT agent_id, last_seq FROM agent_cursors ORDER BY agent_id")
            .expect("cursors");
        let got: Vec<(i64, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        assert_eq!(got, vec![(1, 4), (2, 9)]);
        let host: Option<String> = conn
            .query_row("SELECT recorder_host FROM runs", [], |r| r.get(0))
            .expect("column");
        assert_eq!(host, None);
    }

    #[test]
    fn stores_opened_at_once_by_many_migrate_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.db");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || super::super::Store::open(&path).map(|_| ()))
            })
            .collect();
        for t in threads {
            t.join().expect("thread").expect("opens");
        }
        let conn = Connection::open(&path).expect("open");
        assert_eq!(version(&conn), VERSION);
    }

    #[test]
    fn a_newer_store_is_refused() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("PRAGMA user_version = 99;")
            .expect("set");
        assert!(matches!(
            migrate(&conn),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }
}
