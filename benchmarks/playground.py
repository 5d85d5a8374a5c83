"""The playground's speed: training steps per second, websocket updates per second, page load time.

    python benchmarks/playground.py            # about 30 s
    python benchmarks/playground.py --seconds 2 --loads 3

Measured on the spiral network of the tests (7 features, two tanh layers of 8, batch 10, SGD):
1. steps/s of ``Session.train_step`` in this process (the library's training, diagnostics included);
2. steps/s and websocket updates/s of the real server (uvicorn in a subprocess) while it plays, with a
   websocket client reading every update as the page does;
3. the page's load time in headless Chromium (Debian's; navigation start to the load event, and to the
   moment the page has its session and has drawn it).
Targets (issue 15): >= 200 steps/s, >= 10 updates/s, page load < 1 s. The machine's load average is
printed too: on a shared machine every figure is lower than on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

SPIRAL = {"dataset": "spiral", "layers": [8, 8], "activation": "tanh", "optimizer": "sgd", "lr": 0.03,
          "batch_size": 10, "features": ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"]}
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def in_process(seconds: float) -> float:
    from chainrule.playground import Session

    s = Session(SPIRAL)
    for _ in range(20):  # warm-up
        s.train_step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.train_step()
        n += 1
    return n / (time.perf_counter() - start)


def _post(url: str, body=None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "chainrule.cli", "playground", "--port", str(port), "--no-browser"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the playground server did not start")


async def _stream(url: str, sid: str, seconds: float) -> tuple[int, float]:
    import websockets

    async with websockets.connect(url.replace("http", "ws") + f"/api/session/{sid}/ws", max_size=None) as ws:
        await ws.recv()  # the state before playing
        await asyncio.to_thread(_post, f"{url}/api/session/{sid}/play")
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            await ws.recv()
            n += 1
        return n, time.perf_counter() - start


def server(url: str, seconds: float) -> tuple[float, float]:
    sid = _post(f"{url}/api/session", SPIRAL)["id"]
    before = _post(f"{url}/api/session/{sid}/pause")["steps"]
    t0 = time.perf_counter()
    updates, elapsed = asyncio.run(_stream(url, sid, seconds))
    after = _post(f"{url}/api/session/{sid}/pause")["steps"]
    return (after - before) / (time.perf_counter() - t0), updates / elapsed


def page_load(url: str, loads: int) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    load, ready = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(loads + 1):  # the first load warms the browser's caches: not counted
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']")
            t = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                                          return [n.loadEventEnd, performance.now()]; }""")
            load.append(t[0] / 1000)
            ready.append(t[1] / 1000)
            page.close()
        browser.close()
    return statistics.median(load[1:]), statistics.median(ready[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each training measurement")
    ap.add_argument("--loads", type=int, default=5, help="page loads to time (median)")
    args = ap.parse_args()
    load_avg = os.getloadavg()[0]
    local = in_process(args.seconds)
    proc, url = _start_server()
    try:
        steps, updates = server(url, args.seconds)
        load_s, ready_s = page_load(url, args.loads)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rows = [("training in this process (steps/s, batch 10)", local, ">= 200", local >= 200),
            ("training in the server while streaming (steps/s)", steps, ">= 200", steps >= 200),
            ("websocket updates while playing (per s)", updates, ">= 10", updates >= 10),
            ("page load: navigation to load event (s)", load_s, "< 1", load_s < 1),
            ("page load: to session created and drawn (s)", ready_s, "< 1", ready_s < 1)]
    print(f"chainrule playground, spiral network {SPIRAL['layers']} tanh, {len(SPIRAL['features'])} features; "
          f"load average {load_avg:.1f} on {os.cpu_count()} cores (a busy machine lowers every figure)")
    print(f"| {'measurement':<50} | {'value':>8} | target | met |")
    print(f"|{'-' * 52}|{'-' * 10}|--------|-----|")
    for name, value, target, met in rows:
        print(f"| {name:<50} | {value:>8.3g} | {target:<6} | {'yes' if met else 'no':<3} |")


if __name__ == "__main__":
    main()
