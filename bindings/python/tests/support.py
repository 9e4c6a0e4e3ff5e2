"""Helpers of the Python binding's tests: a real HTTP receiver on 127.0.0.1, the
npm standardwebhooks package as a second opinion on signatures, child processes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

# The product page's person-CREATE event.
PERSON: Dict[str, Any] = {
    "marital_status": {"name": "Single adult", "id": "6120b81e-221c-11ea-978f-2e728ce88125"},
    "date_of_birth": "02/13/2023",
    "sex": {"name": "Male", "id": "b149d056-6a9f-46ee-afde-1aec972dbe9f"},
    "primary_language": {"name": "English", "id": "f045ef20-221a-11ea-978f-2e728ce88125"},
    "last_name": "Doe",
    "hispanic_or_latino": "no",
    "id": "eedc1ff9-0cf8-4f13-ac9b-dcbd2d25e543",
    "first_name": "John",
    "highest_education_grade": {"name": "12", "id": "7772ff4a-221d-11ea-978f-2e728ce88125"},
}
TENANT = "be461bd7-2d91-41c6-ab29-4389066bcc71"
# Running against a sanitizer build, with its runtime preloaded (bindings/CMakeLists.txt).
UNDER_SANITIZER = any(rt in os.environ.get("LD_PRELOAD", "") for rt in ("libasan", "libtsan"))
USER = "f9762deb-a115-412d-adf7-cf772807734a"


def header_path() -> str:
    return os.environ.get("WH_HEADER") or os.path.join(ROOT, "include", "webhook", "webhook.h")


class Request:
    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers  # as received (original letter case)
        self.body = body

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


class Receiver:
    """An HTTP server on 127.0.0.1:<free port> in a thread, recording every
    request. status: what it answers; hang: seconds to wait before answering."""

    def __init__(self, status: int = 200, hang: float = 0.0) -> None:
        self.status = status
        self.hang = hang
        self.requests: List[Request] = []
        self._cv = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                req = Request("POST", self.path, dict(self.headers.items()), body)
                if receiver.hang:
                    time.sleep(receiver.hang)
                with receiver._cv:
                    receiver.requests.append(req)
                    receiver._cv.notify_all()
                answer = b'{"ok":true}'
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A sender that gave up (a test that closed its dispatcher
                # while a request hung) is no failure of the receiver's.
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> List[Request]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: {len(self.requests)} requests after {timeout} s, expected {n}")
                self._cv.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def node() -> str:
    """The node executable: required (a test that cannot run must fail, not skip)."""
    exe = os.environ.get("WH_NODE") or shutil.which("node") or shutil.which("nodejs")
    if not exe:
        raise AssertionError("node not found: scripts/deps.sh installs nodejs")
    return exe


def node_modules() -> str:
    path = os.environ.get("WH_NODE_MODULES") or os.path.join(ROOT, "bindings", "node", "node_modules")
    if not os.path.isdir(os.path.join(path, "standardwebhooks")):
        raise AssertionError(f"{path}/standardwebhooks missing: run bindings/node/setup.sh")
    return path


def standardwebhooks_verify(secret: str, requests: List[Request]) -> List[Dict[str, Any]]:
    """Verify each request's signature with the npm standardwebhooks package."""
    cases = [
        {"headers": r.headers, "body_b64": base64.b64encode(r.body).decode()} for r in requests
    ]
    proc = subprocess.run(
        [node(), os.path.join(HERE, "standardwebhooks_verify.cjs"), secret],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        # Without the sanitizer runtime a sanitized build preloads: node does not load libwebhook.
        env={**{k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}, "NODE_PATH": node_modules()},
    )
    if proc.returncode != 0:
        raise AssertionError(f"standardwebhooks_verify.cjs failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def run_child(code: str, timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess:
    """Run Python code in a child process with this interpreter and environment."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [HERE, os.environ.get("PYTHONPATH")] if p)},
        **kw,
    )
