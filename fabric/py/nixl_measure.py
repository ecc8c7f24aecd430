"""What both sides of a NIXL probe measure with: timing statistics, a buffer with a
verifiable pattern (host memory through numpy, GPU memory through torch) and block
descriptors. Imported by nixl_driver.py; bench/nixl_ref.py reads the statistics it reports."""

import base64
import struct

PATTERN_MUL = 2654435761  # Knuth's multiplicative hash constant, as a 32-bit word
CHUNK_WORDS = 16 << 20  # pattern / checksum work in 64 MiB pieces


class ProbeError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------- statistics


def summarize(values):
    """avg, p50, p99, min, max of a list of numbers (p = nearest rank)."""
    if not values:
        return {"avg": 0.0, "p50": 0.0, "p99": 0.0, "min": 0.0, "max": 0.0}
    s = sorted(values)

    def rank(p):
        return s[min(len(s) - 1, max(0, -(-len(s) * p // 100) - 1))]

    return {"avg": sum(s) / len(s), "p50": rank(50), "p99": rank(99), "min": s[0], "max": s[-1]}


def rates_gbps(nbytes, transfer_us):
    """median / best / average rate in GB/s (1e9 B/s) of per-iteration transfer times."""
    rates = sorted(nbytes / (t * 1e3) for t in transfer_us if t > 0)
    if not rates:
        return {"median": 0.0, "best": 0.0, "avg": 0.0}
    mid = len(rates) // 2
    median = rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2
    avg_us = sum(transfer_us) / len(transfer_us)
    return {"median": median, "best": rates[-1], "avg": nbytes / (avg_us * 1e3)}


# ---------------------------------------------------------------- memory


class Memory:
    """One buffer of 32-bit words, host (numpy) or GPU (torch). Word i of the pattern with
    seed s is (i * PATTERN_MUL + s) mod 2^32; the checksum is sum((i + 1) * word_i) mod
    2^64 over signed words, the same on both kinds of memory."""

    def __init__(self, mem, nbytes):
        if nbytes <= 0 or nbytes % 4:
            raise ProbeError("bad_request", f"bytes must be a positive multiple of 4, got {nbytes}")
        self.nbytes = nbytes
        if mem == "host":
            import numpy as np

            self.np, self.torch = np, None
            self.buf = np.zeros(nbytes // 4, dtype=np.int32)
            self.addr, self.dev, self.mem_type = self.buf.ctypes.data, 0, "DRAM"
        elif mem.startswith("cuda"):
            try:
                import torch
            except ImportError as e:
                raise ProbeError("unavailable", f"--mem {mem} needs torch: {e}") from e
            if not torch.cuda.is_available():
                raise ProbeError("unavailable", f"--mem {mem}: torch sees no CUDA device")
            index = int(mem.split(":", 1)[1]) if ":" in mem else 0
            if index >= torch.cuda.device_count():
                raise ProbeError("unavailable", f"--mem {mem}: only {torch.cuda.device_count()} CUDA devices")
            self.np, self.torch = None, torch
            self.device = torch.device("cuda", index)
            self.buf = torch.zeros(nbytes // 4, dtype=torch.int32, device=self.device)
            self.addr, self.dev, self.mem_type = self.buf.data_ptr(), index, "VRAM"
        else:
            raise ProbeError("bad_request", f"mem must be host or cuda[:N], got {mem!r}")

    def _pieces(self, nbytes):
        words = nbytes // 4
        for start in range(0, words, CHUNK_WORDS):
            yield start, min(words, start + CHUNK_WORDS)

    def _arange(self, start, end, dtype):
        if self.torch is not None:
            return self.torch.arange(start, end, dtype=getattr(self.torch, dtype), device=self.device)
        return self.np.arange(start, end, dtype=getattr(self.np, dtype))

    def _pattern(self, start, end, seed):
        mul = PATTERN_MUL - (1 << 32)  # the same 32 bits, signed
        add = (seed & 0xFFFFFFFF) - ((seed & 0x80000000) << 1)
        if self.torch is not None:
            return self._arange(start, end, "int32") * mul + add
        np = self.np
        with np.errstate(over="ignore"):
            return (self._arange(start, end, "int32") * np.int32(mul) + np.int32(add)).astype(np.int32)

    def fill(self, nbytes, seed):
        for start, end in self._pieces(nbytes):
            self.buf[start:end] = self._pattern(start, end, seed)
        self.sync()

    def checksum(self, nbytes):
        total = 0
        for start, end in self._pieces(nbytes):
            w = self.buf[start:end]
            idx = self._arange(start + 1, end + 1, "int64")
            if self.torch is not None:
                total += int((w.to(self.torch.int64) * idx).sum().item())
            else:
                total += int((w.astype(self.np.int64) * idx).sum())
        return total & 0xFFFFFFFFFFFFFFFF

    def first_mismatch(self, nbytes, seed):
        """Byte offset of the first word that differs from the pattern, or None."""
        for start, end in self._pieces(nbytes):
            diff = self.buf[start:end] != self._pattern(start, end, seed)
            if self.torch is not None:
                hits = self.torch.nonzero(diff)
                if hits.numel():
                    return 4 * (start + int(hits[0].item()))
            else:
                hits = self.np.flatnonzero(diff)
                if hits.size:
                    return 4 * (start + int(hits[0]))
        return None

    def sync(self):
        if self.torch is not None:
            self.torch.cuda.synchronize(self.device)


def block_descs(addr, dev, nbytes, blocks):
    """(blocks, 3) uint64 array of (addr, len, dev): nbytes from addr in equal blocks."""
    import numpy as np

    block = nbytes // blocks
    d = np.empty((blocks, 3), dtype=np.uint64)
    d[:, 0] = np.uint64(addr) + np.arange(blocks, dtype=np.uint64) * np.uint64(block)
    d[:, 1] = block
    d[:, 2] = dev
    return d


def pack_descs(d):
    return base64.b64encode(b"".join(struct.pack("<QQQ", *map(int, row)) for row in d)).decode()


def unpack_descs(text):
    raw = base64.b64decode(text)
    if len(raw) % 24:
        raise ProbeError("bad_request", "peer_descs is not a list of (addr, len, dev) u64 triples")
    return [struct.unpack_from("<QQQ", raw, i) for i in range(0, len(raw), 24)]
