"""The playground's web server: a thin Starlette app that routes the page's requests to sessions.

Each browser tab creates its own :class:`~chainrule.playground.session.Session` (``POST /api/session``)
and talks to it by id; a websocket streams the session's state while it trains (in its own thread,
off the request path). Idle sessions are dropped after ``idle_seconds``; at most ``max_sessions``
live at once. Request bodies are JSON data or CSV text, bounded in size, and never evaluated.

>>> from starlette.testclient import TestClient
>>> client = TestClient(create_app())
>>> sid = client.post("/api/session", json={"dataset": "xor"}).json()["id"]
>>> client.post(f"/api/session/{sid}/step").json()["epoch"]
1
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import warnings
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from .data import MAX_CSV_BYTES
from .session import Session, TrainingStopped

MAX_BODY = 64 * 1024  # JSON requests; a CSV upload may take MAX_CSV_BYTES
UPDATES_PER_SECOND = 15  # while a session plays
GRAPH_PER_SECOND = 4  # the graph panel, recomputed less often than the heat maps
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SessionLimit(RuntimeError):
    pass


class Sessions:
    """The live sessions by id: created per tab, dropped when idle or when the server is full."""

    def __init__(self, max_sessions: int = 32, idle_seconds: float = 1800.0):
        self.max_sessions = int(max_sessions)
        self.idle_seconds = float(idle_seconds)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, settings: dict) -> Session:
        self.reap()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                # the server is full: drop the longest idle session that no tab is watching
                idle = [s for s in self._sessions.values() if s.clients == 0]
                if not idle:
                    raise SessionLimit(f"the playground already has {self.max_sessions} open sessions (the "
                                       "maximum); close a tab and reload")
                oldest = min(idle, key=lambda s: s.last_seen)
                self._drop(oldest.id)
        session = Session(settings, sid=secrets.token_urlsafe(9))
        with self._lock:
            self._sessions[session.id] = session
        return session

    def get(self, sid: str) -> Session:
        session = self._sessions.get(sid)
        if session is None:
            raise KeyError(f"no session {sid!r} (it expired or the server restarted); reload the page")
        session.last_seen = time.monotonic()
        return session

    def _drop(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            session.pause()

    def reap(self) -> int:
        """Drop sessions idle for longer than ``idle_seconds`` with no tab watching; returns how many."""
        now = time.monotonic()
        with self._lock:
            old = [sid for sid, s in self._sessions.items()
                   if s.clients == 0 and now - s.last_seen > self.idle_seconds]
            for sid in old:
                self._drop(sid)
        return len(old)

    def close(self) -> None:
        with self._lock:
            for sid in list(self._sessions):
                self._drop(sid)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request, limit: int = MAX_BODY, what: str = "the request") -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ValueError(f"{what} is {int(declared):,} bytes; the limit is {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValueError(f"{what} is larger than {limit:,} bytes; the limit is {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict:
    raw = await _body(request)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"the request body must be a JSON object, got {type(value).__name__}")
    return value


def create_app(max_sessions: int = 32, idle_seconds: float = 1800.0) -> Starlette:
    """The ASGI app: the page at ``/``, its files under ``/static``, the API under ``/api``."""
    sessions = Sessions(max_sessions, idle_seconds)
    static = resources.files("chainrule.playground") / "static"

    def handler(fn):
        async def endpoint(request: Request):
            try:
                return await fn(request)
            except KeyError as e:
                return _error(str(e.args[0]) if e.args else "not found", 404)
            except SessionLimit as e:
                return _error(str(e), 503)
            except TrainingStopped as e:
                return JSONResponse({"error": str(e), "stopped": e.info}, status_code=409)
            except (ValueError, TypeError) as e:
                return _error(str(e), 400)
        return endpoint

    def session_of(request: Request) -> Session:
        return sessions.get(request.path_params["sid"])

    async def state(session: Session, points: bool = True) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(session.snapshot, points))

    async def index(request: Request):
        return FileResponse(str(static / "index.html"), headers={"Cache-Control": "no-cache"})

    async def create(request: Request):
        body = await _json(request)
        session = await run_in_threadpool(sessions.create, body)
        return await state(session)

    async def get_state(request: Request):
        return await state(session_of(request))

    async def config(request: Request):
        session = session_of(request)
        await run_in_threadpool(session.update, await _json(request))
        return await state(session)

    def action(name: str):
        async def run(request: Request):
            session = session_of(request)
            await run_in_threadpool(getattr(session, name))
            return await state(session, points=False)
        return run

    async def weight(request: Request):
        session = session_of(request)
        body = await _json(request)
        for key in ("layer", "to", "from", "value"):
            if key not in body:
                raise ValueError(f"weight: missing {key!r} (expected layer, to, from, value)")
        await run_in_threadpool(session.set_weight, body["layer"], body["to"], body["from"], body["value"])
        return await state(session, points=False)

    async def sample(request: Request):
        session = session_of(request)
        body = await _json(request)
        await run_in_threadpool(session.set_sample, body.get("index"))
        return JSONResponse(await run_in_threadpool(session.graph))

    async def graph(request: Request):
        session = session_of(request)
        index = request.query_params.get("sample")
        if index is not None and not index.isdigit():
            raise ValueError(f"sample: expected a whole number, got {index!r}")
        if index is not None:
            await run_in_threadpool(session.set_sample, int(index))
        return JSONResponse(await run_in_threadpool(session.graph))

    async def upload(request: Request):
        session = session_of(request)
        name = request.headers.get("x-filename", "the file")[:80] or "the file"
        raw = await _body(request, MAX_CSV_BYTES, name)
        await run_in_threadpool(session.load_csv, raw, name)
        return await state(session)

    async def gradcheck(request: Request):
        session = session_of(request)
        return JSONResponse(await run_in_threadpool(session.gradcheck))

    async def export_code(request: Request):
        session = session_of(request)
        text = await run_in_threadpool(session.script)
        return PlainTextResponse(text, headers={"Content-Disposition": 'attachment; filename="playground_model.py"'})

    async def export_checkpoint(request: Request):
        session = session_of(request)
        data = await run_in_threadpool(session.checkpoint_bytes)
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="playground_model.safetensors"'})

    async def stream(websocket: WebSocket):
        """Push the session's state: at UPDATES_PER_SECOND while it plays, and after each change."""
        try:
            session = sessions.get(websocket.path_params["sid"])
        except KeyError:
            await websocket.close(code=4404)
            return
        await websocket.accept()
        session.clients += 1
        closed = asyncio.Event()

        async def listen():
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while True:
                    await websocket.receive_text()  # keep-alives; commands go through the HTTP API
                    session.last_seen = time.monotonic()
            closed.set()

        listener = asyncio.create_task(listen())
        # the page says which state it has already (from the HTTP answer): no need to send it again
        known = websocket.query_params
        sent_version = int(known["version"]) if known.get("version", "").isdigit() else -1
        sent_data = int(known["data"]) if known.get("data", "").isdigit() else -1
        graph_at = 0.0
        period = 1.0 / UPDATES_PER_SECOND
        tick = time.monotonic()
        try:
            while not closed.is_set():
                if session.version != sent_version:
                    now = time.monotonic()
                    with_graph = not session.playing or now - graph_at >= 1.0 / GRAPH_PER_SECOND
                    with_points = session.data_version != sent_data
                    snap = await run_in_threadpool(session.snapshot, with_points, with_graph)
                    if with_graph:
                        graph_at = now
                    sent_version, sent_data = snap["version"], snap["data_version"]
                    session.last_seen = now
                    await websocket.send_text(json.dumps(snap, allow_nan=False))
                # a fixed clock: the time a snapshot took is not added to the period
                tick = max(tick + period, time.monotonic() - period)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(closed.wait(), timeout=max(0.0, tick - time.monotonic()))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            session.clients -= 1
            session.last_seen = time.monotonic()
            listener.cancel()

    async def reaper():
        while True:
            await asyncio.sleep(min(60.0, max(1.0, sessions.idle_seconds / 4)))
            sessions.reap()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(reaper())
        try:
            yield
        finally:
            task.cancel()
            sessions.close()

    sid = "/api/session/{sid}"
    routes = [
        Route("/", index),
        Route("/api/session", handler(create), methods=["POST"]),
        Route(sid, handler(get_state)),
        Route(sid + "/config", handler(config), methods=["POST"]),
        *[Route(f"{sid}/{name}", handler(action(name)), methods=["POST"])
          for name in ("play", "pause", "step", "reset", "rewind")],
        Route(sid + "/weight", handler(weight), methods=["POST"]),
        Route(sid + "/sample", handler(sample), methods=["POST"]),
        Route(sid + "/graph", handler(graph)),
        Route(sid + "/csv", handler(upload), methods=["POST"]),
        Route(sid + "/gradcheck", handler(gradcheck), methods=["POST"]),
        Route(sid + "/export/code", handler(export_code)),
        Route(sid + "/export/checkpoint", handler(export_checkpoint)),
        WebSocketRoute(sid + "/ws", stream),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sessions = sessions
    return app


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False, **app_kwargs) -> None:
    """Run the playground on uvicorn until interrupted. A host other than loopback warns: anyone who
    can reach the port can use the playground (and the machine's CPU)."""
    import uvicorn

    if not is_loopback(host):
        warnings.warn(f"the playground listens on {host}:{port}: anyone who can reach this port can use it "
                      "(and this machine's CPU); use --host 127.0.0.1 to keep it local", stacklevel=2)
    if open_browser:
        import webbrowser

        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create_app(**app_kwargs), host=host, port=port, log_level="warning", ws="websockets-sansio")
