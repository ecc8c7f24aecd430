//! The reference tools, each as a server and a client process on loopback:
//! `ucx_perftest` (UCX tag and put bandwidth) and `fi_pingpong` (libfabric tcp).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use servescope_fabric::{libfabric, ucx};

use crate::kid::Kid;

const TOOL_LIMIT: Duration = Duration::from_secs(90);

pub(crate) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("picking a free port")?;
    Ok(l.local_addr()?.port())
}

/// Whether something listens on TCP `port` (any address), from /proc/net/tcp{,6}.
fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|s| {
            s.lines().skip(1).any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() > 3 && c[1].ends_with(&want) && c[3] == "0A"
            })
        })
    })
}

fn slurp(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Server listening on `port`, then client; returns the client's stdout.
fn server_client(
    tool: &str,
    env: &[(&str, &str)],
    port: u16,
    srv: &str,
    cli: &str,
) -> Result<String> {
    let cmd = |args: &str| {
        let mut c = Command::new(tool);
        c.envs(env.iter().copied())
            .args(args.split_whitespace())
            .stdin(Stdio::null());
        c
    };
    let mut s = cmd(srv);
    s.stdout(Stdio::null()).stderr(Stdio::null());
    let mut server = Kid::spawn(s, &format!("{tool} server"))?;
    let t = Instant::now();
    while !listening(port) {
        if let Some(st) = server.0.try_wait()? {
            bail!("{tool} server exited with {st} before listening");
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("{tool} server not listening on {port} after 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut c = cmd(cli);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut client = Kid::spawn(c, &format!("{tool} client"))?;
    let out = slurp(client.0.stdout.take().context("client stdout")?);
    let err = slurp(client.0.stderr.take().context("client stderr")?);
    let st = client.wait(TOOL_LIMIT)?;
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let _ = server.wait(Duration::from_secs(5));
    if !st.success() {
        bail!("{tool} client exited with {st}: {}", err.trim());
    }
    Ok(out)
}

pub(crate) fn perftest(test: &str, size: u64, n: u32, window: u32) -> Result<Vec<f64>> {
    let (port, w) = (free_port()?, (n / 10).max(2));
    // -e: endpoints with peer error handling (UCP_ERR_HANDLING_MODE_PEER), as ours
    // are so that a peer dying mid-probe is a clean error. It costs bandwidth on tcp
    // (measured here: tag_bw at 1 MiB 6.5 GB/s without, 4.6 GB/s with), so the
    // reference must pay it too.
    let a = format!("-t {test} -s {size} -n {n} -w {w} -O {window} -e -v -p {port}");
    let env = [("UCX_TLS", "tcp")];
    let out = server_client("ucx_perftest", &env, port, &a, &format!("{a} 127.0.0.1"))?;
    let r = ucx::parse_perftest(&out).with_context(|| format!("no result in {out:?}"))?;
    Ok(vec![r.bandwidth_overall_bps])
}

pub(crate) fn pingpong(size: u64, iters: u32) -> Result<Vec<f64>> {
    let port = free_port()?;
    let a = format!("-p tcp -e rdm -m tagged -S {size} -I {iters}");
    let (srv, cli) = (format!("{a} -B {port}"), format!("{a} -P {port} 127.0.0.1"));
    let out = server_client("fi_pingpong", &[], port, &srv, &cli)?;
    let rows = libfabric::parse_fi_pingpong(&out)?;
    let r = rows.iter().find(|r| r.bytes == size);
    Ok(vec![r.context("no row for the size")?.bandwidth_bps()])
}
