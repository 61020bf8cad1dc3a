"""`llada-rec serve`: the Python API behind HTTP on LitServe.

``POST /predict`` with ``{"history": [item ids], "k": 10}`` (or a list of such objects)
answers ``{"items": [...], "scores": [...], "unknown": [...]}`` (a list for a list).
:class:`RequestGuard`, in the HTTP process, reads and checks every body before it is queued
(size, JSON, fields, ids, k), so a bad request gets its 4xx alone: LitServe decodes a
dynamic batch as one unit, and one bad request would fail its whole batch.  The worker
process loads the :class:`~llada_rec.serving.api.Recommender` and decodes each batch of
requests in one vectorised call.  ``GET /health`` is 200 once the worker has loaded the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Optional

import litserve as ls

from llada_rec.data.item_map import ItemMap
from llada_rec.serving.api import Recommender
from llada_rec.serving.requests import MAX_BODY_BYTES, Query, RequestError, parse_body, response

API_PATH = "/predict"


class RequestGuard:
    """ASGI middleware: a ``POST /predict`` body is read (at most ``max_bytes``), parsed and
    checked; a bad one is answered here (``{"detail": one line}``, 400 or 413), a good one
    goes on as the canonical ``{"queries": [...], "list": bool}`` the worker reads."""

    def __init__(self, app: Any, item_map: ItemMap, default_k: int, max_k: int, max_bytes: int = MAX_BODY_BYTES,
                 path: str = API_PATH) -> None:
        self.app = app
        self.item_map, self.default_k, self.max_k = item_map, default_k, max_k
        self.max_bytes, self.path = max_bytes, path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        try:
            body = await self.read_body(scope, receive)
            queries, is_list = parse_body(body, self.item_map, self.default_k, self.max_k)
        except RequestError as err:
            return await send_json(send, err.status, {"detail": str(err)})
        payload = json.dumps({"queries": [asdict(q) for q in queries], "list": is_list}).encode()
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()  # a disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": payload, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)

    async def read_body(self, scope: dict, receive: Any) -> bytes:
        too_large = RequestError(f"body: over {self.max_bytes:,} bytes", status=413)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError("body: the client went away", status=400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def send_json(send: Any, status: int, content: Any) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RecommenderAPI(ls.LitAPI):
    """The worker side: loads the Recommender in ``setup``; a dynamic batch of requests
    (each one or several histories) is decoded in one call."""

    def __init__(self, ckpt_path: str, decoding: Optional[dict[str, Any]] = None, precision: str = "32", max_k: int = 100,
                 max_batch_size: int = 32, batch_timeout: float = 0.01, item_map: Optional[str] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path=API_PATH)
        self.ckpt_path, self.decoding, self.item_map_path = ckpt_path, decoding, item_map
        self.precision, self.max_k = precision, max_k
        self.recommender: Optional[Recommender] = None

    def setup(self, device: str) -> None:
        self.recommender = Recommender.load(self.ckpt_path, decoding=self.decoding, item_map=self.item_map_path,
                                            device=device, precision=self.precision, max_k=self.max_k)

    def decode_request(self, request: dict) -> tuple[list[Query], bool]:
        return [Query(**q) for q in request["queries"]], bool(request["list"])

    def batch(self, inputs: list) -> list:
        return list(inputs)

    def predict(self, requests: Any) -> Any:
        single = isinstance(requests, tuple)  # max_batch_size 1: one decoded request, not a list
        requests = [requests] if single else requests
        answers = self.recommender.answer([q for queries, _ in requests for q in queries])
        out, start = [], 0
        for queries, is_list in requests:
            out.append((answers[start : start + len(queries)], is_list))
            start += len(queries)
        return out[0] if single else out

    def unbatch(self, output: list) -> list:
        return list(output)

    def encode_response(self, output: tuple) -> Any:
        answers, is_list = output
        rows = [response(a.items, a.scores, a.unknown) for a in answers]
        return rows if is_list else rows[0]


def build_server(recommender: Recommender, ckpt_path: str, decoding: Optional[dict[str, Any]] = None, item_map: Optional[str] = None,
                 max_batch_size: int = 32, batch_timeout: float = 0.01, workers_per_device: int = 1, accelerator: str = "auto",
                 timeout: float = 30.0, max_bytes: int = MAX_BODY_BYTES) -> ls.LitServer:
    """A LitServer for a checkpoint; ``recommender`` (loaded and checked in this process)
    gives the guard its item map and k bounds, the worker loads its own copy."""
    api = RecommenderAPI(ckpt_path, decoding, recommender.precision, recommender.max_k, max_batch_size, batch_timeout, item_map)
    guard = {"item_map": recommender.item_map, "default_k": recommender.default_k, "max_k": recommender.max_k, "max_bytes": max_bytes}
    return ls.LitServer(api, accelerator=accelerator, devices=1, workers_per_device=workers_per_device, timeout=timeout,
                        middlewares=[(RequestGuard, guard)])
