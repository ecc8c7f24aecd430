#!/usr/bin/env python3
"""Reference client for bench/loadgen: the way `vllm bench serve` streams (aiohttp,
asyncio, one task per request, SSE lines split and JSON-decoded per chunk).
Usage: ref_loadgen.py URL CONCURRENCY NUM_REQUESTS INPUT_WORDS OUTPUT_TOKENS
Prints one JSON line: requests, chunks, seconds."""
import asyncio, json, sys, time
import aiohttp

async def one(session, url, body, stats):
    async with session.post(url, json=body) as resp:
        resp.raise_for_status()
        buf = b""
        async for chunk in resp.content.iter_any():
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                data = ev.decode().removeprefix("data: ")
                if data == "[DONE]":
                    continue
                j = json.loads(data)
                if j.get("choices") and j["choices"][0].get("text"):
                    stats["chunks"] += 1
                    stats["last"] = time.perf_counter()
    stats["requests"] += 1

async def main():
    url, conc, n, inp, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    prompt = " ".join(["word"] * inp)
    body = {"model": "servescope-sim", "prompt": prompt, "max_tokens": out, "stream": True}
    stats = {"chunks": 0, "requests": 0, "last": 0.0}
    sem = asyncio.Semaphore(conc)
    conn = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=6 * 3600)) as s:
        async def guarded():
            async with sem:
                await one(s, url + "/v1/completions", body, stats)
        t0 = time.perf_counter()
        await asyncio.gather(*(guarded() for _ in range(n)))
        t1 = time.perf_counter()
    print(json.dumps({"requests": stats["requests"], "chunks": stats["chunks"], "seconds": t1 - t0}))

asyncio.run(main())
