"""Idle, slow and too many connections against a real ``loopwise serve``: each is closed or
refused by the limits, and a fresh client is still answered meanwhile. Every client here is
bounded: a fixed number of sockets, each read with a timeout."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.conftest import SERVER_KEY, WRITE_KEY, Server, start_server, stop_server

WAIT = 15.0  # seconds any one read waits; far above the 1 s limits the servers below use


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; raises TimeoutError if it keeps it open."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def problem_of(response: bytes) -> dict[str, object]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    problem: dict[str, object] = orjson.loads(body)
    return problem


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[Server]:
    server = start_server(tmp_path / "data", extra_args=args)
    try:
        yield server
    finally:
        stop_server(server)


FAST_LIMITS = ("--keep-alive-timeout", "1", "--header-timeout", "1", "--body-timeout", "1")


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("limits"), *FAST_LIMITS) as server:
        yield server


def test_idle_connections_are_closed_and_others_still_served(strict: Server) -> None:
    idle = [connect(strict) for _ in range(200)]
    try:
        # while all 200 are held, a fresh client is answered
        assert httpx.get(strict.url + "/healthz", timeout=WAIT).status_code == 200
        replies = [read_until_closed(sock) for sock in idle]  # TimeoutError if one stays open
    finally:
        for sock in idle:
            sock.close()
    assert {status_of(reply) for reply in replies} == {408}
    assert problem_of(replies[0])["type"] == "https://loopwise.dev/problems/request-timeout"


def test_slow_headers_are_cut_off(strict: Server) -> None:
    sock = connect(strict)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sent = 0
        with contextlib.suppress(OSError):  # the server closing mid-send ends the loop too
            for _ in range(40):  # a header byte every 0.1 s: 4 s if never cut off
                sock.sendall(b"X")
                sent += 1
                time.sleep(0.1)
        reply = read_until_closed(sock)
    finally:
        sock.close()
    assert status_of(reply) == 408
    assert sent < 40


def test_slow_body_is_cut_off(strict: Server) -> None:
    sock = connect(strict)
    try:
        head = (
            f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode())
        sent = 0
        with contextlib.suppress(OSError):
            for _ in range(40):  # 10 body bytes every 0.1 s: 4 s for 400 of the 1000
                sock.sendall(b" " * 10)
                sent += 1
                time.sleep(0.1)
        reply = read_until_closed(sock)
    finally:
        sock.close()
    assert sent < 40
    assert status_of(reply) in (0, 400, 408)  # closed; never a 2xx for half a body
    assert httpx.get(strict.url + "/healthz", timeout=WAIT).status_code == 200


def test_kept_alive_connection_is_closed_after_the_timeout(strict: Server) -> None:
    sock = connect(strict)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_until_closed(sock)  # the response, then the close 1 s later
    finally:
        sock.close()
    assert status_of(reply) == 200


def test_oversized_headers_get_431(strict: Server) -> None:
    sock = connect(strict)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 100_000 + b"\r\n\r\n")
        reply = read_until_closed(sock)
    finally:
        sock.close()
    assert status_of(reply) == 431


def test_concurrency_limit_answers_503_problem_with_retry_after(tmp_path: Path) -> None:
    with serving(tmp_path, "--max-concurrent-requests", "2", "--body-timeout", "30") as server:
        holders = [connect(server) for _ in range(2)]
        try:
            for sock in holders:  # two requests stay in progress, waiting for their bodies
                sock.sendall(
                    f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_KEY}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
                )
            time.sleep(0.5)
            with httpx.Client(base_url=server.url, timeout=WAIT) as client:
                busy = client.get(
                    "/v1/profiles/x", headers={"Authorization": f"Bearer {SERVER_KEY}"}
                )
                health = client.get("/healthz")
        finally:
            for sock in holders:
                sock.close()
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert busy.headers["content-type"] == "application/problem+json"
        assert busy.json()["type"] == "https://loopwise.dev/problems/server-busy"
        assert health.status_code == 200


def test_connections_beyond_the_cap_are_refused(tmp_path: Path) -> None:
    with serving(tmp_path, "--max-connections", "5") as server:
        held = [connect(server) for _ in range(5)]
        try:
            extra = connect(server)
            reply = read_until_closed(extra)
            extra.close()
        finally:
            for sock in held:
                sock.close()
        assert status_of(reply) == 503
        assert b"retry-after: 1" in reply.lower()
        time.sleep(0.5)  # the server notices the closed ones
        assert httpx.get(server.url + "/healthz", timeout=WAIT).status_code == 200


def test_serve_raises_the_open_file_limit(strict: Server) -> None:
    limits = Path(f"/proc/{strict.process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard or int(soft) >= 1 << 20
