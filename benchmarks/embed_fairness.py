"""One user's large `/v1/embeddings` request against another user's one-chunk upload (#23).

A real `rag serve` on the embedded defaults. A thread sends one embedding request of
``--inputs`` texts of 3.5 KB (Open WebUI's chunk size); once it is running, a one-line
file is uploaded and the time until it is processed is measured; then the same upload
alone. Run: .venv/bin/python benchmarks/embed_fairness.py [--inputs 280] [--out NAME.json]
(results under benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _serve import start_server

ROOT = Path(__file__).resolve().parents[1]


def _upload_and_wait(url: str, headers: dict[str, str], name: str) -> float:
    started = time.perf_counter()
    files = {"file": (name, f"{name}: a short note about herons.\n".encode(), "text/plain")}
    file_id = httpx.post(f"{url}/api/v1/files/", headers=headers, files=files).json()["id"]
    while True:
        status = httpx.get(f"{url}/api/v1/files/{file_id}/process/status", headers=headers)
        if status.json()["status"] in ("completed", "failed"):
            return time.perf_counter() - started
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=280)
    parser.add_argument("--out", default="embed_fairness.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fairness-"))
    env = {**os.environ, "RAG_DATA_DIR": str(work / "data"), "RAG_ENABLE_SIGNUP": "true"}
    subprocess.run(
        [sys.executable, "-c", "from rag_pipeline import Pipeline; Pipeline().warm_up()"],
        env=env,
        check=True,
    )
    server, url = start_server(env)
    try:
        keys = []
        for name in ("admin", "other"):
            form = {"name": name, "email": f"{name}@example.com", "password": "pw-123456"}
            token = httpx.post(f"{url}/api/v1/auths/signup", json=form).json()["token"]
            keys.append({"Authorization": f"Bearer {token}"})
        model = httpx.get(f"{url}/v1/models", headers=keys[0]).json()["data"][0]["id"]
        alone = _upload_and_wait(url, keys[1], "warm.txt")
        alone = min(alone, _upload_and_wait(url, keys[1], "alone.txt"))
        words = " ".join(f"river{n} bridge" for n in range(250))[:3500]
        texts = [f"{i} {words}" for i in range(args.inputs)]
        big: dict[str, float] = {}

        def embed() -> None:
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/v1/embeddings",
                headers=keys[0],
                json={"model": model, "input": texts},
                timeout=600,
            )
            response.raise_for_status()
            big["seconds"] = time.perf_counter() - started

        thread = threading.Thread(target=embed)
        thread.start()
        time.sleep(1.0)  # the large request is in the model
        beside = _upload_and_wait(url, keys[1], "beside.txt")
        thread.join()
        result = {
            "inputs": args.inputs,
            "input_chars": len(texts[0]),
            "large_request_s": round(big["seconds"], 2),
            "upload_alone_s": round(alone, 3),
            "upload_beside_large_request_s": round(beside, 3),
        }
        print(json.dumps(result, indent=2))
        out = ROOT / "benchmarks" / "results" / args.out
        out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
