"""Two nixl_driver.py processes, an initiator and a target, driven from Python: what
bench/nixl_ref.py and test_nixl_driver.py share. The agent drives the same protocol from
Rust; this is its Python twin for references and tests."""

import json
import os
import select
import subprocess
import sys
import tempfile
import time

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nixl_driver.py")


class DriverError(Exception):
    def __init__(self, reply):
        super().__init__(f"{reply.get('cmd')}: {reply.get('kind')}: {reply.get('error')}")
        self.reply = reply


class DriverProc:
    """One driver child: requests out on its stdin, replies and events in from its stdout,
    its stderr (NIXL and UCX output) kept in a temporary file."""

    def __init__(self, name, python=sys.executable, env=None, args=()):
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen([python, DRIVER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env={**os.environ, **(env or {})})
        self.buf = b""
        self.events = []

    def send(self, cmd, **kw):
        self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
        self.proc.stdin.flush()

    def reply(self, timeout=300.0):
        """The next reply line; event lines before it are kept in self.events."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                msg = json.loads(line)
                if "event" in msg:
                    self.events.append(msg)
                else:
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"{self.name}: no reply within {timeout} s; stderr:\n{self.stderr()[-2000:]}")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError(f"{self.name}: exited ({self.proc.wait()}); stderr:\n{self.stderr()[-2000:]}")
            self.buf += chunk

    def request(self, cmd, timeout=300.0, **kw):
        self.send(cmd, **kw)
        msg = self.reply(timeout)
        if not msg.get("ok"):
            raise DriverError(msg)
        return msg

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.request("close", timeout=30)
            except (OSError, EOFError, TimeoutError, DriverError):
                pass
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class Pair:
    """An initiator and a target connected through NIXL, the target serving."""

    def __init__(self, nbytes, block_size, mem="host", peer_mem=None, backend="UCX", python=sys.executable,
                 env=None, peer_env=None, driver_args=()):
        self.initiator = DriverProc("initiator", python, env, driver_args)
        self.target = DriverProc("target", python, peer_env if peer_env is not None else env, driver_args)
        try:
            self.hello = {p.name: p.request("hello") for p in (self.initiator, self.target)}
            common = {"backend": backend, "bytes": nbytes, "block_size": block_size}
            ini = self.initiator.request("init", role="initiator", mem=mem, **common)
            tgt = self.target.request("init", role="target", mem=peer_mem or mem, **common)
            self.initiator.request("connect", peer_metadata=tgt["metadata"], peer_descs=tgt["descs"])
            self.target.request("connect", peer_metadata=ini["metadata"], peer_descs=ini["descs"])
            self.target.send("serve")
        except BaseException:
            self.close()
            raise

    def run(self, op, size, blocks=1, iters=10, warmup=3, verify=True, prep="dlist"):
        """The initiator's result for one (op, size); raises DriverError on failure."""
        return self.initiator.request("run", op=op, size=size, blocks=blocks, iters=iters, warmup=warmup,
                                      verify=verify, prep=prep)

    def finish(self):
        """The target's serve summary, after the initiator says done."""
        self.initiator.request("finish")
        msg = self.target.reply()
        if not msg.get("ok"):
            raise DriverError(msg)
        return msg

    def close(self):
        for p in (self.initiator, self.target):
            p.close()
