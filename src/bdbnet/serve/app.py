"""The HTTP service of ``bdbnet serve``: a FastAPI application (extra ``[serve]``).

Routes (the user-facing API; README.md, "Serve a model", shows them in use):

=====================================  =========================================================
``GET /``                              the web page (``static/``: plain HTML, JS and CSS)
``GET /v1/health``                     liveness (never needs the API key)
``GET /v1/info``                       model identity, preprocessing, feature dim, gallery size
``POST /v1/embed``                     multipart ``images`` -> ``{"dim", "features"}``
``POST /v1/search?topk=K&rerank=``     multipart ``images`` -> ``{"results": [[...], ...]}``;
                                       ``&where=`` filters as ``search --where``
``GET /v1/gallery/{index}/image``      a gallery image by its integer index (``?size=`` thumb)
``GET /v1/run``                        with ``--run``: the saved evaluation's summary
``GET /v1/run/queries``                its queries worst AP first (``pid``, ``camid``, paging)
``GET /v1/run/queries/{index}/image``  a query image of the run
=====================================  =========================================================

Errors are ``{"error": "..."}`` with a 4xx status (503 when the model's queue is full); an
error in one request never stops the server. FastAPI is imported inside :func:`create_app`
only, so ``import bdbnet.serve`` works without the extra.

Example:
    >>> extractor = FeatureExtractor("last.pt")  # doctest: +SKIP
    >>> app = create_app(extractor, index=GalleryIndex.load("g.npz"))  # doctest: +SKIP
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
# run time, and their types are imported inside create_app (FastAPI is optional).
import asyncio
import hmac
import json
import logging
import os
from collections.abc import Iterable
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bdbnet.serve.service import ApiError, Service, labels_from_name
from bdbnet.serve.settings import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bdbnet.inference import FeatureExtractor
    from bdbnet.inference.galleries import Gallery
    from bdbnet.serve.runs import SavedRun

__all__ = ["API_KEY_HEADER", "STATIC_FILES", "create_app"]

log = logging.getLogger("bdbnet.serve")

API_KEY_HEADER = "X-API-Key"
#: The page's files, served by name from memory: no request path reaches the filesystem.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_OPEN_PATHS = {"/", "/v1/health"} | {f"/static/{name}" for name in STATIC_FILES}


class UploadTooLargeError(Exception):
    """The request body grew past ``max_upload_bytes`` while it was being read."""


def _json(status: int, body: dict[str, Any]) -> tuple[dict, dict]:
    data = json.dumps(body).encode("utf-8")
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": data}


def host_name(value: str) -> str:
    """The host of a ``Host`` header or URL authority, without port or brackets, lowercased.

    >>> host_name("LocalHost:8000"), host_name("[::1]:8000"), host_name("127.0.0.1")
    ('localhost', '::1', '127.0.0.1')
    """
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware run before any route: the ``Host`` allow-list (when set) and the
    ``Origin`` of state-changing requests, the API key (when set) on every route but the page
    and ``/v1/health``, and the upload limit, from ``Content-Length`` before reading and by
    counting the bytes as they arrive (a chunked body cannot lie about its size)."""

    def __init__(
        self,
        app: Any,
        api_key: str | None,
        max_bytes: int,
        allowed_hosts: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_bytes = max_bytes
        self.allowed_hosts = allowed_hosts

    def _foreign(self, scope: dict, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """A request for another host (DNS rebinding: a page elsewhere resolving its own name to
        this server) or a state-changing one from a page of another origin: ``(status, why)``."""
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            names = ", ".join(sorted(self.allowed_hosts))
            return 421, (
                f"this server does not answer to the host {host or '(none)'!r} (it answers to "
                f"{names}; add names with --allowed-host)"
            )
        origin = headers.get(b"origin")
        if origin and scope.get("method", "GET") not in ("GET", "HEAD", "OPTIONS"):
            name = host_name(urlsplit(origin.decode("latin-1")).netloc)
            allowed = self.allowed_hosts if self.allowed_hosts is not None else {host}
            if name not in allowed:
                return 403, f"requests from pages of {origin.decode('latin-1')!r} are refused"
        return None

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        assert self.api_key is not None
        given = headers.get(API_KEY_HEADER.lower().encode(), b"")
        bearer = headers.get(b"authorization", b"")
        if bearer[:7].lower() == b"bearer ":
            given = given or bearer[7:].strip()
        return hmac.compare_digest(given, self.api_key)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refused = self._foreign(scope, headers)
        if refused is not None:
            for part in _json(refused[0], {"error": refused[1]}):
                await send(part)
            return
        if self.api_key and scope["path"] not in _OPEN_PATHS and not self._authorized(headers):
            message = (
                f"missing or wrong API key: send it as '{API_KEY_HEADER}: KEY' or "
                "'Authorization: Bearer KEY'"
            )
            for part in _json(401, {"error": message}):
                await send(part)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            for part in _json(413, {"error": self._too_large(int(length))}):
                await send(part)
            return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLargeError(self._too_large(received))
            return message

        await self.app(scope, limited, send)

    def _too_large(self, size: int) -> str:
        return (
            f"the upload ({'at least ' if size else ''}{size} bytes) is over this server's limit "
            f"of {self.max_bytes} bytes (--max-upload-mb)"
        )


def _static(name: str) -> bytes:
    return resources.files("bdbnet.serve").joinpath("static", name).read_bytes()


def create_app(
    extractor: "FeatureExtractor",
    index: "Gallery | None" = None,
    run: "SavedRun | None" = None,
    config: ServeConfig | None = None,
    api_key: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    expose_paths: bool | None = None,
) -> "FastAPI":
    """The service of ``extractor`` over a gallery ``index`` (search: a file index or a
    :class:`~bdbnet.inference.milvus_gallery.MilvusGallery`) or a saved ``run``
    (browse), with the limits and batching of ``config`` and an optional ``api_key``.

    ``allowed_hosts``: the ``Host`` names it answers to (others get 421), and the only page
    origins whose POSTs it accepts; ``None`` answers any host and accepts POSTs from pages of
    the requested host only. ``bdbnet serve`` on a loopback address passes
    :data:`~bdbnet.serve.settings.LOOPBACK_HOSTS` (plus ``--allowed-host``).
    ``expose_paths``: answer file paths whole (default: only behind an ``api_key``; otherwise
    relative to the folder the images share, and the checkpoint by its file name).
    """
    try:
        from fastapi import FastAPI, Query, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
        from starlette.datastructures import UploadFile
        from starlette.exceptions import HTTPException
        from starlette.requests import ClientDisconnect
    except ImportError as err:
        raise ImportError(
            f"bdbnet serve needs FastAPI: pip install 'bdbnet[serve]' ({err})"
        ) from err

    exposed = api_key is not None if expose_paths is None else expose_paths
    service = Service(extractor, index, run, config, expose_paths=exposed)
    cfg = service.config
    page = {name: _static(name) for name in STATIC_FILES}

    @asynccontextmanager
    async def lifespan(_: Any):
        yield
        service.close()

    app = FastAPI(
        title="bdbnet", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.service = service
    hosts = None if allowed_hosts is None else frozenset(host_name(h) for h in allowed_hosts)
    app.add_middleware(Guard, api_key=api_key, max_bytes=cfg.max_upload_bytes, allowed_hosts=hosts)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        return error(err.status, err.message)

    @app.exception_handler(UploadTooLargeError)
    async def _too_large(_: Request, err: UploadTooLargeError) -> JSONResponse:
        return error(413, str(err))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, err: HTTPException) -> JSONResponse:
        detail = err.detail if isinstance(err.detail, str) else json.dumps(err.detail)
        if err.status_code == 404 and detail == "Not Found":
            detail = "no such route (see GET /v1/info and the web page at /)"
        return error(err.status_code, detail)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> Response:
        # the client is gone (closed mid-upload): one line, not a server error's traceback
        client = request.client.host if request.client else "a client"
        log.info("%s disconnected during %s %s", client, request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _bug(_: Request, err: Exception) -> JSONResponse:  # logged by the server too
        return error(500, f"internal error ({type(err).__name__}); see the server's log")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for e in err.errors():
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(400, "; ".join(parts))

    async def uploads(request: Request) -> list[tuple[str, bytes]]:
        """The files of the field ``images``, within the count limit."""
        kind = request.headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            raise ApiError(415, "send the images as multipart/form-data in the field 'images'")
        form = await request.form(max_files=cfg.max_images + 1, max_fields=cfg.max_images + 8)
        try:
            files = [f for f in form.getlist("images") if isinstance(f, UploadFile)]
            if not files:
                raise ApiError(400, "no image: send one or more files in the field 'images'")
            if len(files) > cfg.max_images:
                raise ApiError(
                    400, f"at most {cfg.max_images} images per request (--max-images); split them"
                )
            return [(f.filename or f"image {i}", await f.read()) for i, f in enumerate(files)]
        finally:
            await form.close()

    async def features(request: Request) -> tuple[list[tuple[str, bytes]], Any]:
        import torch

        files = await uploads(request)
        inputs = await run_in_threadpool(service.prepare, files)
        rows = await asyncio.gather(*(asyncio.wrap_future(f) for f in service.submit(inputs)))
        return files, torch.stack(list(rows))

    @app.get("/", include_in_schema=False)
    async def index_page() -> Response:
        return Response(page["index.html"], media_type=STATIC_FILES["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in page:
            raise ApiError(404, f"no static file {name!r}")
        return Response(page[name], media_type=STATIC_FILES[name])

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "auth": bool(api_key), "mode": service.info()["mode"]}

    @app.get("/v1/info")
    async def info() -> dict[str, Any]:
        return service.info()

    @app.post("/v1/embed")
    async def embed(request: Request) -> dict[str, Any]:
        _, feats = await features(request)
        return {"dim": int(feats.shape[1]), "features": feats.tolist()}

    @app.post("/v1/search")
    async def search(
        request: Request,
        topk: int = Query(10),
        rerank: bool = Query(False),
        where: str | None = Query(None),
    ) -> dict[str, Any]:
        service.require_index()
        service.check_topk(topk, rerank)
        condition = service.check_where(where) if where else None
        files, feats = await features(request)
        results = await run_in_threadpool(service.search, feats, topk, rerank, condition)
        queries = []
        for name, _ in files:
            pid, cam = labels_from_name(os.path.basename(name))
            queries.append({"name": name, "pid": pid, "camid": cam})
        return {"results": results, "queries": queries}

    def jpeg(data: bytes) -> Response:
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/v1/gallery/{index}/image")
    async def gallery_image(index: int, size: int | None = Query(None)) -> Response:
        return jpeg(await run_in_threadpool(service.image, "gallery", index, size))

    @app.get("/v1/run")
    async def run_summary() -> dict[str, Any]:
        return service.run_summary()

    @app.get("/v1/run/queries")
    async def run_queries(
        pid: int | None = Query(None),
        camid: int | None = Query(None),
        offset: int = Query(0),
        limit: int = Query(20),
    ) -> dict[str, Any]:
        return service.run_queries(pid, camid, offset, limit)

    @app.get("/v1/run/queries/{index}/image")
    async def query_image(index: int, size: int | None = Query(None)) -> Response:
        return jpeg(await run_in_threadpool(service.image, "query", index, size))

    return app
