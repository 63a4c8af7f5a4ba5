"""A campaign decided by several processes: ``loopwise decide-batch --workers N``.

Deciding a person is Python work on one core (~0.2-0.6 ms), so one process decides a few
thousand people a second whatever the machine has. With ``--workers N`` the audience is split
into N disjoint parts by profile id (:class:`loopwise.channels.batch.Shard`) and each part is
decided by its own process, which opens the same data directory (or database) the way the
command did: same workspace, catalog, trained models, consent and decision log. Each worker logs
its decisions (a chunk per write: SQLite's WAL and PostgreSQL take several writers) and writes its
rows, once durable, to a part file; when all are done the parts are merged into ``--out`` in
audience order (a user list's order; a segment's profile id order, as one process gives it).

Everyone resolving to one profile is in one part, so the frequency cap counts all of a person's
decisions of the run. Exploration draws differ from a one-process run (each worker has its own
random stream); every other part of a decision is the same. A worker that fails does not stop
the others: the rows its part file holds (only rows of logged decisions are ever in it) are still
written, and the command then fails naming the worker and its error.
"""

from __future__ import annotations

import heapq
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loopwise.channels.batch import DecideBatchRequest, Row, RowKey, Shard, Summary, write_rows
from loopwise.errors import LoopwiseError, StorageUnavailable, ValidationFailed

#: More processes than this would each hold a whole engine (its views, catalog and models).
MAX_WORKERS = 32


@dataclass(frozen=True, slots=True)
class EngineSource:
    """How a worker opens the engine the command opened (``Engine.open``'s arguments)."""

    data_dir: Path
    workspace: Path | None = None
    database_url: str | None = None


@dataclass(frozen=True, slots=True)
class WorkersRun:
    """What a campaign over several processes did: the summed summary, the rows written."""

    summary: Summary
    written: int
    workers: int


class WorkerFailed(StorageUnavailable):
    """A worker process failed part-way; the rows of its logged decisions were written."""

    slug = "campaign-worker-failed"
    title = "A campaign worker failed"


def decide_in_workers(
    source: EngineSource,
    request: DecideBatchRequest,
    workers: int,
    out: Path,
    format: str | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> WorkersRun:
    """Decide ``request`` in ``workers`` processes and write every row to ``out`` (JSON Lines or
    CSV, as :func:`write_rows`). The caller has validated the request against the workspace
    (``Engine.decide_batch``), so a worker meets no error of the request's own."""
    check_workers(workers)
    start = timer()
    body = request.model_dump_json()
    parts_dir = Path(tempfile.mkdtemp(prefix=".loopwise-campaign-", dir=out.parent))
    try:
        parts = [parts_dir / f"part-{index}.jsonl" for index in range(workers)]
        # spawn, not fork: the command's engine has threads (the storage writer) whose locks a
        # forked child could inherit held
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(decide_part, source, body, Shard(index, workers), parts[index])
                for index in range(workers)
            ]
            outcomes = [_outcome(future) for future in futures]
        written = write_rows(_merged(parts), out, format)
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    summary = Summary(slot=request.slot, campaign=request.campaign)
    for outcome in outcomes:
        if "summary" in outcome:
            _add(summary, outcome["summary"])
    summary.seconds = timer() - start
    failed = [(index, o["error"]) for index, o in enumerate(outcomes) if "error" in o]
    if failed:
        index, error = failed[0]
        raise WorkerFailed(
            f"Campaign worker {index + 1} of {workers} failed: {error}. The {written} rows of "
            f"the decisions logged before it are in {out.name}; run the campaign again for the "
            "rest (the frequency cap skips who already got it, when the slot has one).",
            field="workers",
        )
    return WorkersRun(summary, written, workers)


def check_workers(workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ValidationFailed(
            f"--workers is {workers}: give 1 to {MAX_WORKERS} (one per core is the most that "
            "helps).",
            field="workers",
        )


def decide_part(source: EngineSource, body: str, shard: Shard, part: Path) -> dict[str, Any]:
    """One worker: open the engine, decide its part of the audience, write its rows (each with
    its place in the audience) to ``part`` as they become durable. Returns ``{"summary": …}``,
    or ``{"error": text}`` (an error's own type need not survive the trip between processes)."""
    from loopwise.engine import Engine  # heavy: imported in the worker, not at module load

    try:
        engine, _ = Engine.open(
            source.data_dir, source.workspace, database_url=source.database_url, watch=False
        )
    except Exception as exc:  # the command opened it a moment ago: report, do not hang
        return {"error": _describe(exc)}
    try:
        campaign = engine.decide_batch(DecideBatchRequest.model_validate_json(body), shard)
        with part.open("wb") as file:
            for key, row in campaign.keyed_rows():
                file.write(orjson.dumps([key, row]) + b"\n")
        return {"summary": campaign.summary.to_dict()}
    except Exception as exc:
        return {"error": _describe(exc)}
    finally:
        engine.close()


def _outcome(future: Future[dict[str, Any]]) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as exc:  # the process died (killed, out of memory): BrokenProcessPool
        return {"error": _describe(exc)}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, LoopwiseError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _merged(parts: list[Path]) -> Iterator[Row]:
    """The parts' rows in audience order: each part is in that order already."""
    streams = [_read_part(part) for part in parts if part.exists()]
    for _, row in heapq.merge(*streams, key=lambda entry: entry[0]):
        yield row


def _read_part(part: Path) -> Iterator[tuple[RowKey, Row]]:
    with part.open("rb") as file:
        for line in file:
            if not line.endswith(b"\n"):
                return  # a worker killed mid-line: the rest of that row never made it
            (position, profile_id), row = orjson.loads(line)
            yield (position, profile_id), row


def _add(summary: Summary, part: dict[str, Any]) -> None:
    summary.audience += part["audience"]
    summary.decided += part["decided"]
    summary.skipped.update(part["skipped"])
    summary.anonymous += part["anonymous_left_out"]
    summary.damaged += part["damaged_left_out"]
