"""One side of a NIXL transfer probe, driven over line-delimited JSON.

Runs with the Python of the serving engine's environment (the one whose NIXL and bundled
UCX are to be measured). Needs the NIXL Python package (nixl_cu13, nixl_cu12 or nixl) and
numpy; torch only for GPU memory. Run as a script, `python nixl_driver.py [--max-bytes N]
[--max-iters N] [--timeout-s S]`, with nixl_measure.py in the same directory (or on
PYTHONPATH): the supervisor writes both files into one private directory.

Channels
  stdin   requests, one JSON object per line.
  stdout  replies and events, one JSON object per line. Nothing else is ever written there:
          at start the driver moves file descriptor 1 to 2, so UCX / NIXL output written
          to stdout (UCX_PROTO_INFO tables, UCX_LOG_LEVEL lines) lands on stderr.
  stderr  logs, NIXL and UCX output.
The driver exits (status 0) when stdin closes, also while serving.

Every request is {"cmd": NAME, ...}. Each request gets exactly one reply, the last line it
causes: {"ok": true, "cmd": NAME, ...} or {"ok": false, "cmd": NAME, "error": TEXT,
"kind": KIND} with KIND one of "bad_request", "refused" (over a cap), "unavailable" (no
NIXL, no backend, no device), "transfer" (NIXL reported an error or a timeout), "verify"
(contents differ). Lines with "event" instead of "ok" come before a reply.

  hello -> {nixl_module, nixl_version, python, pid, plugins: [names],
            backends: {UCX|LIBFABRIC: {params, mem_types} | {error}},
            ucx: {libucp: PATH, version: "1.23.0"} | {error}, libs: [mapped library paths]}
      libucp is the file this process mapped (/proc/self/maps) after loading the UCX
      plugin; version is ucp_get_version() called on that file.
  init {role?: "initiator"|"target", backend: "UCX"|"LIBFABRIC", mem: "host"|"cuda:N",
        bytes: N, block_size: N, backend_params?: {str: str}}
      -> {agent, metadata: BASE64, descs: BASE64, region: {addr, len, dev, mem_type}}
      Allocates one buffer of `bytes`, registers it once, fills it with this side's
      pattern. descs: the region as block descriptors of block_size bytes, packed
      little-endian (addr u64, len u64, dev u64) per descriptor. bytes over the cap
      (--max-bytes) is refused.
  connect {peer_metadata: BASE64, peer_descs: BASE64, role?} -> {peer}
      Both sides connect (the target sends notifications back to the initiator). The role
      is given at init or here (a side that publishes its metadata before it knows it).
  run {op: "WRITE"|"READ", size: N, blocks: N, iters: N, warmup: N, verify: bool,
       prep?: "dlist"|"xfer"}                                           (initiator)
      The transfer of `size` bytes from the start of the region is built of `blocks`
      descriptors of size/blocks bytes each (size/blocks a multiple of 4).
      prep "dlist" (default, as vLLM's NixlConnector): both descriptor lists prepared once
      (prep_xfer_dlist, reported as dlist_prep_us), each iteration makes a request from
      them (make_prepped_xfer); "xfer": each iteration calls initialize_xfer.
      Each measured iteration: prepare = request creation, post = the transfer() call,
      transfer = from post until check_xfer_state() == "DONE" (busy poll; the NIXL
      progress thread is off). Then the request is released.
      -> {"event": "iter", i, prepare_us, post_us, transfer_us, bytes} per measured
         iteration (written after the last one, none while transfers run), then the reply {op, size, blocks, block_size, iters, warmup,
         dlist_prep_us, prepare_us, post_us, transfer_us (each {avg, p50, p99, min, max}),
         gbps {median, best, avg} (1e9 B/s over transfer time), verified: bool}
      Verification (verify true): WRITE: the initiator filled its region with a pattern
      new to this run and sends its checksum in a notification; the target checks its
      region. READ: the target fills its region with a new pattern on request and answers
      its checksum; the initiator checks what it read. A mismatch fails the run with the
      size and the first differing byte offset.
  serve {idle_timeout_s?: N}                                             (target)
      Polls NIXL notifications (and so progresses the worker) until the initiator's
      "done". -> {"event": "write_verified"|"read_prepared", ...} per verification, then
      {writes_verified, reads_prepared, mismatches}. A "stop" line on stdin ends it.
  finish -> {peer_summary}                                            (initiator)
      Sends "done" to the target and waits for its acknowledgement.
  close -> {} then exit 0.

Notifications between the two sides are JSON objects with "t": write_check {id, size,
seed, checksum} -> write_result {id, ok, checksum, offset}; read_prep {id, size, seed} ->
read_ready {id, checksum}; done -> done_ack {summary}.
"""

import base64
import ctypes
import json
import os
import select
import sys
import time

if "__file__" in globals():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nixl_measure import Memory, ProbeError, block_descs, pack_descs, rates_gbps, summarize, unpack_descs  # noqa: E402


# ---------------------------------------------------------------- NIXL discovery


def import_nixl():
    """(module name, nixl_agent, nixl_agent_config) of the first NIXL package found."""
    errors = []
    for name in ("nixl_cu13", "nixl_cu12", "nixl._api", "nixl"):
        try:
            mod = __import__(name, fromlist=["nixl_agent"])
            return name.split(".")[0], mod.nixl_agent, mod.nixl_agent_config
        except (ImportError, AttributeError) as e:
            errors.append(f"{name}: {e}")
    raise ProbeError("unavailable", "NIXL not importable (" + "; ".join(errors) + ")")


def nixl_version(module):
    from importlib import metadata

    for dist in (module.replace("_", "-"), "nixl"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def mapped_libs(needles=("libucp", "libucs", "libuct", "libucm", "libfabric", "libnixl", "libplugin_")):
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6:
                path = parts[5].strip()
                if any(n in os.path.basename(path) for n in needles) and path not in paths:
                    paths.append(path)
    return paths


def plugin_load_error(name):
    """The dynamic loader's reason a NIXL plugin does not load (NIXL_PLUGIN_DIR, else the
    plugins/ directory beside the mapped libnixl)."""
    dirs = [os.environ["NIXL_PLUGIN_DIR"]] if os.environ.get("NIXL_PLUGIN_DIR") else []
    dirs += [os.path.join(os.path.dirname(p), "plugins") for p in mapped_libs(("libnixl.so",))]
    for d in dirs:
        path = os.path.join(d, f"libplugin_{name}.so")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path)
            except OSError as e:
                return str(e)
            return f"{path} loads, but NIXL reported no memory types for it"
    return f"libplugin_{name}.so not found in {dirs}"


def ucx_version(libucp):
    lib = ctypes.CDLL(libucp)
    major, minor, release = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
    lib.ucp_get_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(release))
    return f"{major.value}.{minor.value}.{release.value}"


# ---------------------------------------------------------------- the driver


class Driver:
    def __init__(self, out, stdin, max_bytes, max_iters, timeout_s):
        self.out, self.stdin = out, stdin
        self.max_bytes, self.max_iters, self.timeout_s = max_bytes, max_iters, timeout_s
        self.agent = None
        self.mem = None
        self.peer = None
        self.role = None
        self.seq = 0
        self.inbox = []

    def emit(self, obj):
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    def _agent(self):
        if self.agent is None:
            self.module, nixl_agent, nixl_agent_config = import_nixl()
            cfg = nixl_agent_config(enable_prog_thread=False, enable_listen_thread=False, backends=[])
            self.agent = nixl_agent(f"servescope-{os.getpid()}", cfg)
        return self.agent

    def hello(self, req):
        agent = self._agent()
        backends = {}
        for name in ("UCX", "LIBFABRIC"):
            if name not in agent.get_plugin_list():
                backends[name] = {"error": "no such NIXL plugin"}
                continue
            # NIXL logs a failed plugin load and returns nothing: ask the loader why.
            mem_types = agent.get_plugin_mem_types(name)
            if mem_types:
                backends[name] = {"params": agent.get_plugin_params(name), "mem_types": mem_types}
            else:
                backends[name] = {"error": f"plugin did not load: {plugin_load_error(name)}"}
        libs = mapped_libs()
        ucp = [p for p in libs if os.path.basename(p).startswith("libucp")]
        ucx = {"error": "no libucp mapped after loading the UCX plugin"}
        if ucp:
            try:
                ucx = {"libucp": ucp[0], "version": ucx_version(ucp[0])}
            except (OSError, AttributeError) as e:
                ucx = {"libucp": ucp[0], "error": f"ucp_get_version: {e}"}
        return {"nixl_module": self.module, "nixl_version": nixl_version(self.module),
                "python": sys.version.split()[0], "pid": os.getpid(),
                "plugins": agent.get_plugin_list(), "backends": backends, "ucx": ucx, "libs": libs}

    def init(self, req):
        if self.mem is not None:
            raise ProbeError("bad_request", "init was already done")
        self.role = self._role(req.get("role"), optional=True)
        nbytes, block = int(req["bytes"]), int(req.get("block_size", req["bytes"]))
        if nbytes > self.max_bytes:
            raise ProbeError("refused", f"bytes {nbytes} over the cap {self.max_bytes}")
        if block <= 0 or block % 4 or nbytes % block:
            raise ProbeError("bad_request", f"block_size {block} must be a multiple of 4 dividing bytes {nbytes}")
        agent = self._agent()
        backend = req.get("backend", "UCX")
        if backend not in agent.get_plugin_list():
            raise ProbeError("unavailable", f"NIXL backend {backend} not available (plugins: {agent.get_plugin_list()})")
        try:
            agent.create_backend(backend, {str(k): str(v) for k, v in req.get("backend_params", {}).items()})
        except Exception as e:
            raise ProbeError("unavailable", f"NIXL backend {backend} did not start: {e}") from e
        self.backend = backend
        self.mem = Memory(req.get("mem", "host"), nbytes)
        self.mem.fill(nbytes, self._seed())
        m = self.mem
        agent.register_memory([(m.addr, m.nbytes, m.dev, "")], m.mem_type, backends=[backend])
        return {"agent": agent.name, "metadata": base64.b64encode(agent.get_agent_metadata()).decode(),
                "descs": pack_descs(block_descs(m.addr, m.dev, nbytes, nbytes // block)),
                "region": {"addr": m.addr, "len": m.nbytes, "dev": m.dev, "mem_type": m.mem_type}}

    @staticmethod
    def _role(role, optional):
        if role in ("initiator", "target") or (optional and role is None):
            return role
        raise ProbeError("bad_request", f"role must be initiator or target, got {role!r}")

    def connect(self, req):
        if self.mem is None:
            raise ProbeError("bad_request", "connect before init")
        self.role = self._role(req.get("role", self.role), optional=False)
        descs = unpack_descs(req["peer_descs"])
        if not descs:
            raise ProbeError("bad_request", "peer_descs is empty")
        self.peer_base, self.peer_dev = descs[0][0], descs[0][2]
        self.peer_len = sum(d[1] for d in descs)
        self.peer = self.agent.add_remote_agent(base64.b64decode(req["peer_metadata"]))
        if isinstance(self.peer, bytes):
            self.peer = self.peer.decode()
        return {"peer": self.peer}

    # -- notifications

    def _seed(self):
        self.seq += 1
        return (os.getpid() * 7919 + self.seq * 104729) & 0xFFFFFFFF

    def _notify(self, msg):
        self.agent.send_notif(self.peer, json.dumps(msg).encode())

    def _poll_notifs(self):
        for msgs in self.agent.get_new_notifs().values():
            for m in msgs:
                try:
                    self.inbox.append(json.loads(m))
                except ValueError:
                    print(f"nixl_driver: ignored notification {m[:80]!r}", file=sys.stderr)

    def _await(self, kind, ident):
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for i, m in enumerate(self.inbox):
                if m.get("t") == kind and m.get("id") == ident:
                    return self.inbox.pop(i)
            self._poll_notifs()
        raise ProbeError("transfer", f"no {kind} from {self.peer} within {self.timeout_s} s")

    # -- initiator

    def run(self, req):
        if self.role != "initiator" or self.peer is None:
            raise ProbeError("bad_request", "run needs an initiator after init and connect")
        op, size = req.get("op"), int(req["size"])
        blocks, iters, warmup = int(req.get("blocks", 1)), int(req.get("iters", 10)), int(req.get("warmup", 3))
        verify, prep = bool(req.get("verify", True)), req.get("prep", "dlist")
        if op not in ("WRITE", "READ") or prep not in ("dlist", "xfer"):
            raise ProbeError("bad_request", f"op must be WRITE or READ and prep dlist or xfer, got {op!r} {prep!r}")
        if size > min(self.mem.nbytes, self.peer_len):
            raise ProbeError("refused", f"size {size} over the registered region ({min(self.mem.nbytes, self.peer_len)})")
        if blocks <= 0 or size % blocks or (size // blocks) % 4:
            raise ProbeError("bad_request", f"size {size} must split into {blocks} blocks of a multiple of 4 bytes")
        if not 0 < iters + warmup <= self.max_iters:
            raise ProbeError("refused", f"iters + warmup must be 1..{self.max_iters}")
        agent, mem, ident = self.agent, self.mem, self.seq + 1
        seed = self._seed()
        peer_sum = None
        if op == "WRITE":
            mem.fill(size, seed)
        else:
            mem.fill(size, seed ^ 0x5A5A5A5A)  # stale contents a READ must overwrite
            if verify:
                self._notify({"t": "read_prep", "id": ident, "size": size, "seed": seed})
                peer_sum = self._await("read_ready", ident)["checksum"]
        local = block_descs(mem.addr, mem.dev, size, blocks)
        remote = block_descs(self.peer_base, self.peer_dev, size, blocks)
        dlist_us = 0.0
        if prep == "dlist":
            t0 = time.perf_counter_ns()
            local_h = agent.prep_xfer_dlist("NIXL_INIT_AGENT", local, mem.mem_type, backends=[self.backend])
            remote_h = agent.prep_xfer_dlist(self.peer, remote, mem.mem_type, backends=[self.backend])
            dlist_us = (time.perf_counter_ns() - t0) / 1e3
            indices = list(range(blocks))
        else:
            local_x = agent.get_xfer_descs(local, mem.mem_type)
            remote_x = agent.get_xfer_descs(remote, mem.mem_type)
        times = {"prepare_us": [], "post_us": [], "transfer_us": []}
        check = agent.check_xfer_state  # bound once: the poll loop below runs it per poll
        timeout_ns = int(self.timeout_s * 1e9)
        for i in range(warmup + iters):
            t0 = time.perf_counter_ns()
            if prep == "dlist":
                h = agent.make_prepped_xfer(op, local_h, indices, remote_h, indices, backends=[self.backend])
            else:
                h = agent.initialize_xfer(op, local_x, remote_x, self.peer, backends=[self.backend])
            t1 = time.perf_counter_ns()
            state = agent.transfer(h)
            t2 = time.perf_counter_ns()
            deadline = t2 + timeout_ns
            polls = 0
            while state == "PROC":
                state = check(h)
                polls += 1
                # The clock is read every 256 polls only: the busy loop drives UCX's
                # progress (the progress thread is off), and a transfer of tens of
                # microseconds must not pay a clock read per poll.
                if state == "PROC" and polls & 255 == 0 and time.perf_counter_ns() > deadline:
                    state = "TIMEOUT"
            t3 = time.perf_counter_ns()
            agent.release_xfer_handle(h)
            if state != "DONE":
                raise ProbeError("transfer", f"{op} of {size} bytes ({blocks} blocks), iteration {i}: NIXL state {state}")
            if i >= warmup:
                times["prepare_us"].append((t1 - t0) / 1e3)
                times["post_us"].append((t2 - t1) / 1e3)
                times["transfer_us"].append((t3 - t1) / 1e3)
        if prep == "dlist":
            agent.release_dlist_handle(local_h)
            agent.release_dlist_handle(remote_h)
        # The per-iteration events leave after the loop: a line written to the
        # supervisor while transfers are in flight wakes it (and its reader) on the
        # cores the emulated protocols need.
        for i, row in enumerate(zip(times["prepare_us"], times["post_us"], times["transfer_us"])):
            self.emit({"event": "iter", "i": i, "bytes": size, **dict(zip(times, row))})
        if verify:
            self._verify(op, size, seed, ident, peer_sum)
        result = {"op": op, "size": size, "blocks": blocks, "block_size": size // blocks, "iters": iters,
                  "warmup": warmup, "prep": prep, "dlist_prep_us": dlist_us, "verified": verify,
                  "gbps": rates_gbps(size, times["transfer_us"])}
        result.update({k: summarize(v) for k, v in times.items()})
        return result

    def _verify(self, op, size, seed, ident, peer_sum):
        mem = self.mem
        mem.sync()
        if op == "WRITE":
            self._notify({"t": "write_check", "id": ident, "size": size, "seed": seed, "checksum": mem.checksum(size)})
            res = self._await("write_result", ident)
            if not res["ok"]:
                raise ProbeError("verify", f"WRITE of {size} bytes: target contents differ from the initiator's "
                                           f"at byte offset {res['offset']} (checksum {res['checksum']:#x})")
            return
        got = mem.checksum(size)
        if got != peer_sum:
            offset = mem.first_mismatch(size, seed)
            raise ProbeError("verify", f"READ of {size} bytes: data read differs from the target's at byte offset "
                                       f"{offset} (checksum {got:#x}, target {peer_sum:#x})")

    def finish(self, req):
        ident = self.seq + 1
        self._notify({"t": "done", "id": ident})
        return {"peer_summary": self._await("done_ack", ident).get("summary")}

    # -- target

    def serve(self, req):
        if self.role != "target" or self.peer is None:
            raise ProbeError("bad_request", "serve needs a target after init and connect")
        idle = float(req.get("idle_timeout_s", self.timeout_s))
        summary = {"writes_verified": 0, "reads_prepared": 0, "mismatches": 0}
        last = time.monotonic()
        spins = 0
        while True:
            self._poll_notifs()
            while self.inbox:
                last = time.monotonic()
                m = self.inbox.pop(0)
                if m.get("t") == "done":
                    self._notify({"t": "done_ack", "id": m.get("id"), "summary": summary})
                    return summary
                self._serve_one(m, summary)
            spins += 1
            if spins % 1024 == 0:
                line = self.stdin.poll(0)
                if line is EOF:
                    exit_now(0)
                if line is not None and json.loads(line).get("cmd") == "stop":
                    return summary
                if time.monotonic() - last > idle:
                    raise ProbeError("transfer", f"serve: nothing from the initiator for {idle} s")

    def _serve_one(self, m, summary):
        mem, size = self.mem, int(m.get("size", 0))
        if size > mem.nbytes:
            print(f"nixl_driver: request over the region: {m}", file=sys.stderr)
            return
        if m.get("t") == "write_check":
            got = mem.checksum(size)
            ok = got == m["checksum"]
            offset = None if ok else mem.first_mismatch(size, m["seed"])
            summary["writes_verified" if ok else "mismatches"] += 1
            self._notify({"t": "write_result", "id": m["id"], "ok": ok, "checksum": got, "offset": offset})
            self.emit({"event": "write_verified", "size": size, "ok": ok, "offset": offset})
        elif m.get("t") == "read_prep":
            mem.fill(size, m["seed"])
            summary["reads_prepared"] += 1
            self._notify({"t": "read_ready", "id": m["id"], "checksum": mem.checksum(size)})
            self.emit({"event": "read_prepared", "size": size})


# ---------------------------------------------------------------- main loop

EOF = object()


class LineReader:
    """Lines from a file descriptor without Python's buffering, so select() tells the truth."""

    def __init__(self, fd):
        self.fd, self.buf, self.closed = fd, b"", False

    def poll(self, timeout):
        """A line, None (nothing within timeout) or EOF."""
        while b"\n" not in self.buf:
            if self.closed:
                return EOF if not self.buf.strip() else self._take(len(self.buf))
            if not select.select([self.fd], [], [], timeout)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            self.closed = not chunk
            self.buf += chunk
        return self._take(self.buf.index(b"\n") + 1)

    def _take(self, n):
        line, self.buf = self.buf[:n], self.buf[n:]
        return line.decode()


def exit_now(code):
    """Flush and leave without running NIXL's destructors (they crash on some nodes)."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description="NIXL probe driver (JSON lines on stdin/stdout)")
    ap.add_argument("--max-bytes", type=int, default=1 << 30, help="largest region init accepts")
    ap.add_argument("--max-iters", type=int, default=100000, help="most iterations (warm-up included) per run")
    ap.add_argument("--timeout-s", type=float, default=120.0, help="wait for the peer or a transfer at most this")
    args = ap.parse_args(argv)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # C-level writes to stdout (UCX tables) go to stderr
    stdin = LineReader(0)
    driver = Driver(out, stdin, args.max_bytes, args.max_iters, args.timeout_s)
    handlers = {"hello": driver.hello, "init": driver.init, "connect": driver.connect, "run": driver.run,
                "serve": driver.serve, "finish": driver.finish}
    while True:
        line = stdin.poll(None)
        if line is EOF:
            exit_now(0)
        if not line.strip():
            continue
        cmd = None
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "close":
                driver.emit({"ok": True, "cmd": "close"})
                exit_now(0)
            if cmd not in handlers:
                raise ProbeError("bad_request", f"unknown cmd {cmd!r}")
            driver.emit({"ok": True, "cmd": cmd, **handlers[cmd](req)})
        except ProbeError as e:
            driver.emit({"ok": False, "cmd": cmd, "kind": e.kind, "error": str(e)})
        except (KeyError, ValueError, TypeError) as e:
            driver.emit({"ok": False, "cmd": cmd, "kind": "bad_request", "error": f"{type(e).__name__}: {e}"})
        except Exception as e:  # NIXL raises its own exception types
            driver.emit({"ok": False, "cmd": cmd, "kind": "transfer", "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main(sys.argv[1:])
