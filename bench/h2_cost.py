"""The fast transport's CPU per request over TLS: HTTP/2 against HTTP/1.1, same server, same request.

nginx (TLS, ``http2`` on the listener, ALPN picks) pinned to core 1; the client in this
process, pinned to core 0, on uvloop: ``--vus`` VUs, each its own ``FastTransport`` and so its
own connection, POSTing the bench's small JSON body back to back. Rounds alternate h1 and h2
(``http2=False``/``True`` on the transport); each round dials, warms up for a second, then
measures this process's CPU time (user + system) over ``--duration`` seconds and the
requests completed in it. Prints CPU ms per 1000 requests per round, the medians and ranges,
and the h2 ÷ h1 ratio of each consecutive pair (the machine is shared: ratios from one run).

    python -m bench.h2_cost --vus 20 --duration 5 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import ssl
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import uvloop

from bench.procs import taskset
from bench.target import BODY, HEADERS, NGINX_CONF, NGINX_PATH, RESPONSE_JSON, _wait_listening, free_port, nginx_binary
from surge.worker.http import HttpClient, Response
from surge.worker.http.transports.fast import FastTransport

_TLS_LISTEN = (
    "listen 127.0.0.1:{port} ssl http2 backlog=16384;\n"
    "        ssl_certificate {cert};\n"
    "        ssl_certificate_key {cert};"
)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round(url: str, context: ssl.SSLContext, http2: bool, vus: int, duration_s: float) -> tuple[float, int, str]:
    """CPU ms per 1000 requests over the measured window, the requests in it, the protocol seen."""
    counted = [0]
    measuring = [False]
    protos: set[str] = set()

    def on_response(resp: Response, _tags: object) -> None:
        if measuring[0]:
            counted[0] += 1
        protos.add(resp.proto if resp.status else f"failed {resp.error_code} {resp.error}")

    clients = [
        HttpClient(on_response=on_response, transport=FastTransport(ssl_context=context, http2=http2))
        for _ in range(vus)
    ]
    stop = asyncio.Event()

    async def vu(client: HttpClient) -> None:
        while not stop.is_set():
            await client.post(url, data=BODY, headers=HEADERS)

    tasks = [asyncio.ensure_future(vu(c)) for c in clients]
    await asyncio.sleep(1.0)  # dial and warm up
    measuring[0] = True
    cpu0 = _cpu_s()
    await asyncio.sleep(duration_s)
    cpu = _cpu_s() - cpu0
    measuring[0] = False
    stop.set()
    await asyncio.gather(*tasks)
    for c in clients:
        await c.close()
    return cpu / counted[0] * 1e6, counted[0], ",".join(sorted(protos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=20)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=4, help="pairs of rounds (h1 then h2)")
    args = parser.parse_args()
    import trustme  # the test extra's; a bench-only need

    binary = nginx_binary()
    if binary is None:
        print("needs nginx (the Debian package)")
        return
    with tempfile.TemporaryDirectory(prefix="surge-h2-bench-") as tmp:
        ca = trustme.CA()
        cert = Path(tmp) / "server.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
        port = free_port()
        conf = NGINX_CONF.replace("listen 127.0.0.1:{port} backlog=16384;", _TLS_LISTEN)
        (Path(tmp) / "nginx.conf").write_text(
            conf.format(tmp=tmp, port=port, path=NGINX_PATH, body=RESPONSE_JSON, cert=cert)
        )
        server = subprocess.Popen(
            [*taskset("1"), binary, "-p", tmp, "-c", str(Path(tmp) / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            _wait_listening(port, server)
            os.sched_setaffinity(0, {0})
            context = ssl.create_default_context()
            ca.configure_trust(context)
            url = f"https://127.0.0.1:{port}{NGINX_PATH}"
            per_1k: dict[bool, list[float]] = {False: [], True: []}
            for i in range(args.rounds):
                for http2 in (False, True):
                    ms, n, protos = uvloop.run(_round(url, context, http2, args.vus, args.duration))
                    per_1k[http2].append(ms)
                    name = "h2" if http2 else "h1"
                    print(f"round {i + 1} {name}: {ms:7.1f} CPU ms/1k requests, {n} requests ({protos})")
                    time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=10)
    for http2 in (False, True):
        v = per_1k[http2]
        name = "HTTP/2  " if http2 else "HTTP/1.1"
        print(f"{name}: median {statistics.median(v):.1f} CPU ms/1k (range {min(v):.1f}-{max(v):.1f})")
    ratios = [b / a for a, b in zip(per_1k[False], per_1k[True])]
    print(f"h2 / h1 per pair: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
