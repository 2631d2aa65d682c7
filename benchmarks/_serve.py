"""A `rag serve` process for the benchmarks that drive a real server over loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def start_server(env: dict[str, str], log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start `rag serve` on a free loopback port; return it and its URL once healthy. Its
    output goes to ``log`` (appended) if given, else nowhere."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    rag = Path(sys.executable).parent / "rag"
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        server = subprocess.Popen(
            [str(rag), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("rag serve did not start" + (f": see {log}" if log else ""))
        time.sleep(0.3)
