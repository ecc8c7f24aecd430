"""Tests of nixl_driver.py on host memory: two drivers (one NIXL agent each) through the
real NIXL and its bundled UCX. Run with the Python of scripts/nixl_venv.sh:

    $(scripts/nixl_venv.sh) fabric/py/test_nixl_driver.py

(pytest runs them too). Without NIXL importable every test is skipped, with the reason.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nixl_driver  # noqa: E402
import nixl_measure  # noqa: E402
from nixl_pair import DriverError, DriverProc, Pair  # noqa: E402


class Skip(Exception):
    pass


def need_nixl():
    try:
        nixl_driver.import_nixl()
    except nixl_measure.ProbeError as e:
        raise Skip(str(e)) from e


def test_pattern_checksum_and_mismatch_offset():
    mem = nixl_measure.Memory("host", 1 << 16)
    mem.fill(mem.nbytes, 1234)
    assert mem.first_mismatch(mem.nbytes, 1234) is None
    before = mem.checksum(mem.nbytes)
    mem.buf[1000] ^= 1
    assert mem.checksum(mem.nbytes) != before
    assert mem.first_mismatch(mem.nbytes, 1234) == 4000
    assert mem.first_mismatch(4000, 1234) is None  # only the prefix is checked
    mem.fill(mem.nbytes, 99)
    assert mem.checksum(mem.nbytes) != before


def test_stats():
    s = nixl_measure.summarize([float(v) for v in range(1, 101)])
    assert (s["avg"], s["p50"], s["p99"], s["min"], s["max"]) == (50.5, 50.0, 99.0, 1.0, 100.0)
    r = nixl_measure.rates_gbps(1_000_000, [1000.0, 500.0, 2000.0])
    assert (r["median"], r["best"]) == (1.0, 2.0)


def test_descs_round_trip():
    d = nixl_measure.block_descs(1 << 40, 3, 4096, 4)
    assert nixl_measure.unpack_descs(nixl_measure.pack_descs(d)) == [((1 << 40) + i * 1024, 1024, 3) for i in range(4)]


def test_hello_names_nixl_and_its_ucx():
    need_nixl()
    d = DriverProc("hello")
    try:
        h = d.request("hello")
    finally:
        d.close()
    assert h["nixl_version"], h
    assert "UCX" in h["plugins"], h
    assert h["backends"]["UCX"]["mem_types"], h
    assert os.path.basename(h["ucx"]["libucp"]).startswith("libucp"), h
    assert h["ucx"]["version"].count(".") == 2, h
    assert h["ucx"]["libucp"] in h["libs"], h


def test_write_and_read_verified():
    need_nixl()
    pair = Pair(8 << 20, 64 << 10)
    try:
        for size, blocks in ((4096, 1), (1 << 20, 1), (8 << 20, 128)):
            for op in ("WRITE", "READ"):
                for prep in ("dlist", "xfer"):
                    seen = len(pair.initiator.events)
                    r = pair.run(op, size, blocks=blocks, iters=3, warmup=1, prep=prep)
                    assert r["verified"] and r["size"] == size and r["blocks"] == blocks, r
                    # One event per measured iteration, in order, carrying the times the
                    # reply summarizes (they are written after the loop, not inside it).
                    ev = [e for e in pair.initiator.events[seen:] if e["event"] == "iter"]
                    assert [e["i"] for e in ev] == [0, 1, 2] and all(e["bytes"] == size for e in ev), ev
                    for k in ("prepare_us", "post_us", "transfer_us"):
                        assert max(e[k] for e in ev) == r[k]["max"], (k, ev, r)
                    assert r["gbps"]["median"] > 0 and r["transfer_us"]["min"] > 0, r
                    assert r["transfer_us"]["max"] >= r["post_us"]["max"], r  # a transfer time includes its post
        iters = [e for e in pair.initiator.events if e["event"] == "iter"]
        assert len(iters) == 3 * 2 * 2 * 3, len(iters)
        summary = pair.finish()
        assert summary["writes_verified"] == 6 and summary["reads_prepared"] == 6, summary
        assert summary["mismatches"] == 0, summary
    finally:
        pair.close()


def test_caps_and_bad_requests_are_refused():
    need_nixl()
    d = DriverProc("capped", args=("--max-bytes", str(1 << 20), "--max-iters", "5"))
    try:
        for req, kind in (({"role": "target", "bytes": 2 << 20}, "refused"),
                          ({"role": "nobody", "bytes": 4096}, "bad_request"),
                          ({"role": "target", "bytes": 4096, "block_size": 1000}, "bad_request"),
                          ({"role": "target", "bytes": 4096, "mem": "tpu"}, "bad_request")):
            d.send("init", **req)
            reply = d.reply()
            assert not reply["ok"] and reply["kind"] == kind, (req, reply)
        d.send("run", op="WRITE", size=4096)
        assert d.reply()["kind"] == "bad_request"
        d.send("fly")
        assert d.reply()["kind"] == "bad_request"
    finally:
        d.close()
    pair = Pair(1 << 20, 1 << 20, driver_args=("--max-bytes", str(1 << 20), "--max-iters", "5"))
    try:
        for kw, kind in (({"size": 2 << 20}, "refused"), ({"size": 1 << 20, "iters": 10}, "refused"),
                         ({"size": 1 << 20, "blocks": 3}, "bad_request")):
            try:
                pair.run("WRITE", **{"iters": 2, **kw})
                raise AssertionError(f"{kw} was not refused")
            except DriverError as e:
                assert e.reply["kind"] == kind, (kw, e.reply)
        pair.finish()
    finally:
        pair.close()


def test_driver_exits_when_stdin_closes_while_serving():
    need_nixl()
    pair = Pair(1 << 20, 1 << 20)
    try:
        target = pair.target.proc
        target.stdin.close()
        deadline = time.monotonic() + 30
        while target.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert target.returncode == 0, target.returncode
    finally:
        pair.close()


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    failed = 0
    for name, fn in tests:
        t0 = time.monotonic()
        try:
            fn()
            print(f"ok      {name} ({time.monotonic() - t0:.1f} s)")
        except Skip as e:
            print(f"skipped {name}: {e}")
        except Exception as e:  # report every test, then fail
            failed += 1
            print(f"FAILED  {name}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed} of {len(tests)} passed or skipped")
    sys.stdout.flush()
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
