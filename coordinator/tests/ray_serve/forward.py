"""A Ray Serve deployment that forwards OpenAI-style POSTs (e.g. /v1/completions,
streaming) to an upstream server and streams its answer back unchanged, with the
upstream's status, content type and x-request-id. Used by coordinator/tests/ray_serve.rs
as `import_path: forward:build` with `args: {"upstream": "http://host:port"}`."""

import aiohttp
from ray import serve
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

PASS_REQUEST = ("content-type", "x-request-id", "authorization", "accept")
PASS_RESPONSE = ("content-type", "x-request-id")


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class Forward:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.session = None

    async def __call__(self, request: Request):
        if request.method != "POST":
            return Response("forward.py only forwards POST\n", status_code=405)
        if self.session is None:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_read=120)
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() in PASS_REQUEST}
        body = await request.body()
        upstream = await self.session.post(
            self.upstream + request.url.path, data=body, headers=headers
        )
        out = {k: v for k, v in upstream.headers.items() if k.lower() in PASS_RESPONSE}

        async def chunks():
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        return StreamingResponse(
            chunks(),
            status_code=upstream.status,
            headers={k: v for k, v in out.items() if k.lower() != "content-type"},
            media_type=out.get("Content-Type") or out.get("content-type"),
        )


def build(args: dict):
    return Forward.bind(args["upstream"])
