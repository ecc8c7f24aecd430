//! Helpers of the CLI's process tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output};

#[allow(unused_imports)]
pub use servescope_fabric::test_support::nixl_python;

/// The `servescope` binary, with backtraces off so error output is what users see.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_servescope"));
    c.env_remove("RUST_BACKTRACE");
    c
}

/// A child process killed when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the `servescope` binary with `args`, asserts that it fails, and returns what
/// it wrote on stderr.
pub fn failure(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The agent binary beside `servescope` (cargo builds every workspace binary for
/// tests), if built.
pub fn agent_bin() -> Option<std::path::PathBuf> {
    let p =
        std::path::Path::new(env!("CARGO_BIN_EXE_servescope")).with_file_name("servescope-agent");
    p.exists().then_some(p)
}

/// An agent on a free loopback port with this token file, ready when its port
/// accepts; its address is the second field.
pub fn loopback_agent(token_file: &std::path::Path) -> Option<(Kill, String)> {
    loopback_agent_with(token_file, &[])
}

/// [`loopback_agent`] with extra agent flags.
pub fn loopback_agent_with(token_file: &std::path::Path, extra: &[&str]) -> Option<(Kill, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    agent_on(token_file, &format!("127.0.0.1:{port}"), extra)
}

/// An agent listening on `listen` (HOST:PORT) with extra flags, ready when its
/// port accepts.
pub fn agent_on(
    token_file: &std::path::Path,
    listen: &str,
    extra: &[&str],
) -> Option<(Kill, String)> {
    let listen = listen.to_string();
    // The agent refuses a token file every user can read.
    std::fs::set_permissions(
        token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .ok()?;
    let child = Command::new(agent_bin()?)
        .args([
            "--listen",
            &listen,
            "--metrics-listen",
            "off",
            "--token-file",
        ])
        .arg(token_file)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let k = Kill(child);
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        if t0.elapsed() > std::time::Duration::from_secs(10) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some((k, listen))
}

/// Runs `cmd` to the end: its output, stdout and stderr (lossy UTF-8).
pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, so, se)
}

/// Runs `cmd`, asserts that it succeeds (showing both streams if not), and returns
/// what it wrote on stdout.
pub fn success(cmd: &mut Command) -> String {
    let (out, so, se) = run(cmd);
    assert!(out.status.success(), "{so}\n{se}");
    so
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Appends `fabric probe --from <from> --to <to> --no-store --token-file <tok>` to
/// `cmd`.
pub fn fabric_probe<'c>(cmd: &'c mut Command, tok: &Path, from: &str, to: &str) -> &'c mut Command {
    cmd.args([
        "fabric",
        "probe",
        "--from",
        from,
        "--to",
        to,
        "--no-store",
        "--token-file",
    ])
    .arg(tok)
}

/// A finished command's stdout then stderr (lossy UTF-8), one line apart.
pub fn both_streams(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A simulated engine on loopback (5 ms per decode step, 4 sequences at a time):
/// the child, killed when dropped, and its URL.
pub fn sim() -> (Kill, String) {
    use std::io::{BufRead, BufReader};
    let mut sim = bin()
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--decode-ms",
            "5",
            "--max-num-seqs",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut l = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut l)
        .unwrap();
    (Kill(sim), l.trim().to_string())
}

/// An experiment against a simulator ([`sim`]): its file `e.yaml` and the store
/// path `e.db` in a fresh temporary directory.
pub struct SimExperiment {
    pub sim: Kill,
    pub dir: tempfile::TempDir,
    pub file: std::path::PathBuf,
    pub db: std::path::PathBuf,
}

/// Starts [`sim`] and writes experiment `name` with one deployment on it and the
/// `servescope-sim` model; `workload` holds the other workload lines, indented by
/// two spaces.
pub fn sim_experiment(name: &str, workload: &str) -> SimExperiment {
    let (sim, url) = sim();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.yaml");
    std::fs::write(
        &file,
        format!("name: {name}\ndeployments:\n  - {{name: one, endpoint: '{url}'}}\nworkload:\n  model: servescope-sim\n{workload}"),
    )
    .unwrap();
    let db = dir.path().join("e.db");
    SimExperiment { sim, dir, file, db }
}

impl SimExperiment {
    /// `servescope exp run` on the experiment and its store.
    pub fn exp_run(&self) -> Command {
        let mut c = bin();
        c.args(["exp", "run"])
            .arg(&self.file)
            .arg("--db")
            .arg(&self.db);
        c
    }

    /// Starts [`SimExperiment::exp_run`] and waits (60 s at most) for a progress
    /// line starting with `progress` (`[2/6]`: the second of six points started):
    /// the run, killed when dropped, and the rest of its stderr, kept open so that
    /// the run's next progress line is not written to a closed pipe.
    pub fn run_until(&self, progress: &str) -> (Kill, impl std::io::BufRead) {
        use std::io::{BufRead, BufReader};
        use std::time::{Duration, Instant};
        let mut run = Kill(
            self.exp_run()
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut err = BufReader::new(run.0.stderr.take().unwrap());
        let t0 = Instant::now();
        let mut line = String::new();
        while t0.elapsed() < Duration::from_secs(60) {
            line.clear();
            if err.read_line(&mut line).unwrap() == 0 || line.starts_with(progress) {
                break;
            }
        }
        assert!(line.starts_with(progress), "no progress: {line}");
        (run, err)
    }
}

/// `servescope pd run` against a cluster from [`pd_cluster`]: its proxy, prefill and
/// decode URLs given; the caller adds the sweep and the store.
pub fn pd_run(urls: &std::collections::HashMap<String, String>) -> Command {
    let mut c = bin();
    c.args(["pd", "run", "--proxy", &urls["proxy"]]).args([
        "--prefill",
        &urls["prefill"],
        "--decode",
        &urls["decode"],
    ]);
    c
}

/// `servescope sim --pd-cluster` on loopback with 4 ms decode steps; the caller
/// adds flags and hands it to [`pd_cluster`].
pub fn pd_sim() -> Command {
    let mut c = bin();
    c.args([
        "sim",
        "--pd-cluster",
        "--listen",
        "127.0.0.1:0",
        "--decode-ms",
        "4",
    ]);
    c
}

/// Runs `servescope <args> <html> --db <db>`, asserts that it succeeds, and returns
/// the HTML page it wrote.
pub fn html_page(args: &[&str], html: &Path, db: &Path) -> String {
    success(bin().args(args).arg(html).arg("--db").arg(db));
    std::fs::read_to_string(html).unwrap()
}

/// Starts a simulated P/D cluster (`cmd`: `servescope sim --pd-cluster …` as the
/// caller built it) and reads the "ROLE URL" lines it prints first: the proxy,
/// prefill and decode URLs by role.
pub fn pd_cluster(cmd: &mut Command) -> (Kill, std::collections::HashMap<String, String>) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let sim = Kill(child);
    let mut urls = std::collections::HashMap::new();
    for line in BufReader::new(out).lines().take(3) {
        let line = line.unwrap();
        let (role, url) = line.split_once(' ').unwrap();
        urls.insert(role.to_string(), url.to_string());
    }
    (sim, urls)
}
