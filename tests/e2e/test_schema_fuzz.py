"""Schemathesis fuzzes every operation of the running server's own OpenAPI schema: whatever it
sends (valid or schema-violating data, with the admin, server or write key, or with none), the
answer is never a 5xx, and every answer (success or problem+json) matches the schema.

Bounded and deterministic (derandomized, a few examples per operation and mode) so it runs in well
under a minute; the server is a real ``loopwise serve`` with its own data directory. The cases
are driven with plain Hypothesis (schemathesis's pytest plugin predates pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from loopwise.api.routes_compat import SEGMENT_METRICS_PATH, SEGMENT_SHORT_PATHS
from loopwise.api.routes_ingest import INGEST_PATHS
from tests.e2e.conftest import (
    ADMIN_KEY,
    SERVER_KEY,
    WRITE_KEY,
    Server,
    start_server,
    stop_server,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 8
INGEST = INGEST_PATHS | set(SEGMENT_SHORT_PATHS)  # the write key may be in the body
# the browser SDKs' settings reads carry the write key in the path or the query (404 for others)
PUBLIC = {
    "/healthz",
    "/metrics",
    SEGMENT_METRICS_PATH,
    "/v1/projects/{write_key}/settings",
    "/sourceConfig",
}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    yield running
    stop_server(running)


def operations(server: Server) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 20, [f"{op.method} {op.path}" for op in found]
    return found


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, key: str | None) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        case.headers = headers
        response = case.call_and_validate(checks=CHECKS)
        path = operation.path
        if key is None and path.startswith("/v1/") and path not in PUBLIC | INGEST:
            # ingest may carry writeKey in the body; everything else needs a header key
            assert response.status_code == 401, response.text

    try:
        run()
    except Unsatisfiable:  # nothing to violate (e.g. GET /healthz has no parameters)
        if mode is not GenerationMode.NEGATIVE:
            raise
    except Exception as exc:
        exc.add_note(f"while fuzzing {operation.method.upper()} {operation.path} ({mode.value})")
        raise


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_admin_key_never_a_5xx_and_always_the_documented_shape(
    fuzz_server: Server, mode: GenerationMode
) -> None:
    for operation in operations(fuzz_server):
        fuzz(operation, mode, ADMIN_KEY)
    assert fuzz_server.process.poll() is None, fuzz_server.log()
    assert "unhandled" not in fuzz_server.log()


@pytest.mark.parametrize("key", [WRITE_KEY, SERVER_KEY], ids=["write", "server"])
def test_write_and_server_keys_never_a_5xx_and_always_the_documented_shape(
    fuzz_server: Server, key: str
) -> None:
    """Lesser keys reach other code paths (403s, the write key's /why) with the same checks."""
    for operation in operations(fuzz_server):
        fuzz(operation, GenerationMode.POSITIVE, key)
    assert fuzz_server.process.poll() is None, fuzz_server.log()
    assert "unhandled" not in fuzz_server.log()


def test_no_key_is_refused_never_a_5xx(fuzz_server: Server) -> None:
    for operation in operations(fuzz_server):
        fuzz(operation, GenerationMode.POSITIVE, None)
    assert "unhandled" not in fuzz_server.log()
