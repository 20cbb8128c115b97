"""A small Chrome DevTools Protocol client: headless Chromium driven over aiohttp's websocket.

For the tests that open the HTML report and the live dashboard in a real browser. It starts
``chromium --headless=new`` with its own profile directory and ``--remote-debugging-port=0``,
reads the DevTools URL from its stderr, attaches to the first page, and records what the page
did: console messages, uncaught exceptions, log entries and every network request.

The browser is kept off the network: ``--proxy-server`` points at a closed port on 127.0.0.1,
so anything but loopback (which Chromium never proxies) fails instead of leaving the machine,
and the background services (updates, sync, safe browsing) are switched off.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLog:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return self.console_errors + self.exceptions + self.log_errors


class Browser:
    """``async with Browser() as b: await b.navigate(url); await b.evaluate("1+1")``."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("chromium is not installed")
        self._exe = exe
        self._size = (width, height)
        self.log = PageLog()
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="surge-chromium-")
        args = [
            self._exe, "--headless=new", "--disable-gpu", "--remote-debugging-port=0",
            f"--user-data-dir={self._profile}", f"--window-size={self._size[0]},{self._size[1]}",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--disable-domain-reliability", "--metrics-recording-only", "--safebrowsing-disable-auto-update",
            "--proxy-server=http://127.0.0.1:9", "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        browser_ws = await asyncio.to_thread(self._read_ws_url)
        port = int(browser_ws.split(":")[2].split("/")[0])
        self._http = aiohttp.ClientSession()
        page_ws = None
        for _ in range(100):  # bounded: the first page shows up within moments of the DevTools line
            async with self._http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json(content_type=None)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                page_ws = pages[0]["webSocketDebuggerUrl"]
                break
            await asyncio.sleep(0.1)
        assert page_ws is not None, "chromium opened no page"
        self._ws = await self._http.ws_connect(page_ws, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Runtime", "Log", "Network", "Page"):
            await self.send(f"{domain}.enable")
        return self

    def _read_ws_url(self) -> str:
        assert self._proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self._proc.stderr.readline()
            if not line:
                break
            m = _LISTENING.search(line)
            if m:
                return m.group(1)
        raise RuntimeError("chromium did not print its DevTools URL")

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self._ws.close()
        await self._http.close()
        self._proc.kill()
        self._proc.wait(timeout=30)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
                continue
            self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.log.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.log.exceptions.append(str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.log.log_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            self.log.requests.append(params["request"]["url"])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = fut
        await self._ws.send_json({"id": self._next_id, "method": method, "params": params})
        reply = await asyncio.wait_for(fut, timeout=60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"evaluate failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, within_s: float = 30) -> Any:
        """Until ``expression`` is truthy in the page (polled, bounded)."""
        deadline = time.monotonic() + within_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never got to: {expression}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> str:
        """A PNG of the whole page, not just the window, written to ``path``; returns it as base64."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data: str = shot["data"]
        path.write_bytes(base64.b64decode(data))
        return data

    async def colored_pixels(self, png_base64: str, rects: list[dict[str, float]]) -> list[int]:
        """In the screenshot, per rect (page CSS pixels), how many pixels are clearly coloured.

        Coloured: the spread between the strongest and weakest channel is over 60, which the
        page's white panels, grey grid and dark text never reach, and every chart's data
        lines do. The browser decodes the PNG (no image library needed): it is drawn into a
        detached canvas of the page and read back.
        """
        script = """(async (b64, rects) => {
            const img = new Image(); img.src = "data:image/png;base64," + b64; await img.decode();
            const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
            const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
            return rects.map(r => {
              const w = Math.max(1, Math.floor(r.width)), h = Math.max(1, Math.floor(r.height));
              const d = ctx.getImageData(Math.floor(r.x), Math.floor(r.y), w, h).data;
              let n = 0;
              for (let i = 0; i < d.length; i += 4) {
                if (Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 60) n++;
              }
              return n;
            });
        })"""
        value: list[int] = await self.evaluate(f"({script})({json.dumps(png_base64)}, {json.dumps(rects)})")
        return value



async def _screenshot_file(page: Path, out: Path, width: int) -> None:
    async with Browser(width=width, height=900) as b:
        await b.navigate(page.resolve().as_uri())
        await b.wait_for("window.__surgeRendered >= 1")
        await b.screenshot(out)


if __name__ == "__main__":
    # python -m tests.cdp REPORT.html OUT.png [WIDTH]: how docs/report.png is made (see README).
    import sys

    asyncio.run(_screenshot_file(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1400))
