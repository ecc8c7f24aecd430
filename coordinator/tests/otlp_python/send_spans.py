#!/usr/bin/env python3
"""Sends spans to an OTLP/gRPC endpoint with the real OpenTelemetry Python SDK
(opentelemetry-sdk + opentelemetry-exporter-otlp-proto-grpc), the way vLLM does.

Used by coordinator/tests/otlp_python.rs; the venv comes from scripts/otel_venv.sh.

    send_spans.py HOST:PORT [--timeout S] < spec.json

The spec (JSON on stdin) says what to send:

    {"resource": {"service.name": "vllm", "host.name": "node-1", ...},
     "max_export_batch_size": 512,            # optional
     "spans": [{"name": "llm_request",
                "start_ns": 1, "end_ns": 2,   # explicit times, ns since the epoch
                "attributes": {"gen_ai.request.id": "x", "gen_ai.latency.e2e": 1.5},
                "kind": "server",             # optional: internal (default) | server
                "error": "message",           # optional: status ERROR
                "parent": 0,                  # optional: index of an earlier span (child of it)
                "remote_parent": {"trace_id": "32 hex", "span_id": "16 hex"}}]}

Attribute values keep their JSON type: integers are sent as OTLP ints, numbers
with a fraction or exponent as doubles (vLLM sets token counts as `int` and
latencies as `float`), strings as strings.

Spans are created with `tracer.start_span(..., start_time=...)` and ended with
`span.end(end_time=...)`, as vLLM's `do_tracing` does for `llm_request`; the
processor is a `BatchSpanProcessor` around `OTLPSpanExporter(insecure=True)`.

Prints one JSON line on stdout: the exports made (spans in each, result) and the
ids of the spans sent, in spec order. Exits 1 when an export failed or the flush
did not complete (the SDK only logs such failures; here they are made visible).
"""

import argparse
import json
import logging
import sys
import threading

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)


class RecordingExporter(SpanExporter):
    """Delegates to the OTLP exporter and records every export's result."""

    def __init__(self, inner):
        self.inner = inner
        self.exports = []
        self.lock = threading.Lock()

    def export(self, spans):
        try:
            result = self.inner.export(spans)
        except Exception as e:  # noqa: BLE001 - the exporter should not raise; record it
            print(f"send_spans: export raised {e!r}", file=sys.stderr)
            result = SpanExportResult.FAILURE
        with self.lock:
            self.exports.append({"spans": len(spans), "result": result.name})
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("endpoint", help="OTLP/gRPC endpoint, HOST:PORT")
    ap.add_argument("--timeout", type=float, default=10.0, help="export timeout, seconds")
    args = ap.parse_args()
    spec = json.load(sys.stdin)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    resource = Resource.create(spec["resource"])
    exporter = RecordingExporter(
        OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=args.timeout)
    )
    bsp_args = {}
    if "max_export_batch_size" in spec:
        bsp_args["max_export_batch_size"] = int(spec["max_export_batch_size"])
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, **bsp_args))
    tracer = provider.get_tracer("vllm.tracing", "servescope-test")

    kinds = {"internal": SpanKind.INTERNAL, "server": SpanKind.SERVER}
    made = []
    sent = []
    for i, s in enumerate(spec["spans"]):
        context = None
        if s.get("parent") is not None:
            context = set_span_in_context(made[int(s["parent"])])
        elif s.get("remote_parent"):
            rp = s["remote_parent"]
            parent = SpanContext(
                trace_id=int(rp["trace_id"], 16),
                span_id=int(rp["span_id"], 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            context = set_span_in_context(NonRecordingSpan(parent))
        span = tracer.start_span(
            s["name"],
            context=context,
            kind=kinds[s.get("kind", "internal")],
            start_time=int(s["start_ns"]),
        )
        for k, v in s.get("attributes", {}).items():
            span.set_attribute(k, v)
        if s.get("error"):
            span.set_status(Status(StatusCode.ERROR, s["error"]))
        made.append(span)
        ctx = span.get_span_context()
        sent.append(
            {
                "index": i,
                "name": s["name"],
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
            }
        )
    # End children before parents, like nested `with` blocks, each at its own time.
    for s, span in sorted(zip(spec["spans"], made), key=lambda p: p[0]["end_ns"]):
        span.end(end_time=int(s["end_ns"]))

    flushed = provider.force_flush(timeout_millis=int(args.timeout * 3000))
    provider.shutdown()

    failed = [e for e in exporter.exports if e["result"] != SpanExportResult.SUCCESS.name]
    exported = sum(e["spans"] for e in exporter.exports)
    print(json.dumps({"flushed": flushed, "exports": exporter.exports, "spans": sent}))
    sys.stdout.flush()
    if not flushed:
        print("send_spans: force_flush did not complete", file=sys.stderr)
        return 1
    if failed:
        print(f"send_spans: {len(failed)} export(s) failed: {failed}", file=sys.stderr)
        return 1
    if exported != len(sent):
        print(f"send_spans: exported {exported} spans of {len(sent)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
