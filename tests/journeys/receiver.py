"""A webhook receiver on 127.0.0.1 for the tests: checks each request's signature, records its
idempotency key, and fails the first attempts of every key on purpose (HTTP 503).

In process: ``Receiver(secret, fail_first=1).start()``; as its own process (the kill -9 test):
``python -m tests.journeys.receiver --port P --secret S --fail-first 1 --log FILE``. The log has
one JSON line per request: key, attempt, status, whether the signature held. A request whose body
ends before its Content-Length (the sender died mid-send) is logged as ``truncated`` and not
answered: its signature cannot hold, and that is the sender's crash, not a signing defect.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from loopwise.journeys.delivery import ATTEMPT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify


class Receiver:
    def __init__(
        self,
        secret: str,
        *,
        fail_first: int = 0,
        port: int = 0,
        log: Path | None = None,
        delay: float = 0.0,
    ) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request, in arrival order
        self.acknowledged: dict[str, int] = {}  # key -> 2xx answers
        self.attempts: dict[str, int] = {}
        self.bodies: dict[str, Any] = {}
        self._log = log.open("a", encoding="utf-8") if log is not None else None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                key = self.headers.get(IDEMPOTENCY_HEADER) or ""
                if len(body) < length:
                    receiver.record_truncated(key, self.headers.get(ATTEMPT_HEADER))
                    self.close_connection = True
                    return
                signature = self.headers.get(SIGNATURE_HEADER) or ""
                status = receiver.handle(key, signature, body, self.headers.get(ATTEMPT_HEADER))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, key: str, signature: str, body: bytes, attempt: str | None) -> int:
        if self.delay:
            time.sleep(self.delay)
        signed = verify(self.secret, signature, body)
        with self.lock:
            seen = self.attempts.get(key, 0) + 1
            self.attempts[key] = seen
            if not signed or not key:
                status = 401
            elif seen <= self.fail_first:
                status = 503
            else:
                status = 200
                self.acknowledged[key] = self.acknowledged.get(key, 0) + 1
                self.bodies[key] = json.loads(body)
            entry = {"key": key, "attempt": attempt, "status": status, "signed": signed}
            self.requests.append(entry)
            if self._log is not None:
                self._log.write(json.dumps(entry) + "\n")
                self._log.flush()
        return status

    def record_truncated(self, key: str, attempt: str | None) -> None:
        entry = {"key": key, "attempt": attempt, "status": None, "signed": False, "truncated": True}
        with self.lock:
            self.requests.append(entry)
            if self._log is not None:
                self._log.write(json.dumps(entry) + "\n")
                self._log.flush()

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._log is not None:
            self._log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    receiver = Receiver(
        args.secret, fail_first=args.fail_first, port=args.port, log=args.log, delay=args.delay
    )
    receiver.server.serve_forever()


if __name__ == "__main__":
    main()
