"""Markdown for each benchmark's result, with the issue's goal and whether this run met it.

The notes on what stands in the way come from profiling these paths (py-spy on ``loopwise serve``
during the ingest benchmark, cProfile on the writer thread's ingest job, tracemalloc on profiles).
"""

from __future__ import annotations

from typing import Any


def _goal(met: bool, text: str) -> str:
    return f"Goal {text}: **{'met' if met else 'missed'}** in this run."


def decide(d: dict[str, Any]) -> list[str]:
    cpu = f" {d['cpu_p50_ms']:.3f} | {d['cpu_p99_ms']:.3f} |" if "cpu_p50_ms" in d else " - | - |"
    return [
        "## decide, in-process (3-slot page: hero block with rules + recommended + trending)",
        "",
        "Sample workspace and rules; `recommended` on its default strategy (category_affinity),",
        "`trending` on trending. Profiles: real ingest of 2,000 users (10 events each), cloned",
        "under new ids to the count below and reloaded from storage, all in the profile view",
        "(the newest tenth decoded, the rest as compressed records: most requests decode one).",
        "",
        "| profiles | items | requests | p50 ms | p99 ms | mean ms | CPU p50 ms | CPU p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {d['profiles']} | {d['items']} | {d['requests']} | {d['p50_ms']:.3f} | "
        f"{d['p99_ms']:.3f} | {d['mean_ms']:.3f} |{cpu}",
        "",
        _goal(d["p99_ms"] <= 1.0, "p99 ≤ 1 ms"),
        "CPU: the deciding thread's own time (the decision-log writer thread's share and the",
        "waits for a core are left out). Fixed from profiling (2026-12-07): `category_affinity`",
        "walks its top categories' own slices of the popularity ranking instead of the whole",
        "ranking (same top n; the slices are made once the ranking kept still for 8 requests,",
        "at most once per 500);",
        "filters' accepted ids are worked out once per catalog (a set lookup per item instead",
        "of a predicate call); decisions are group-committed (a write job per decision cost",
        "the writer ~0.1 ms of the GIL); list decisions skip re-validating their own models.",
        "What stands in the way: per request, decoding the person's profile from the view's",
        "compressed tier and compressing the one it pushes out (~0.1-0.2 ms, profiles/ and",
        "views/), the profile's attributes and ~30 segment conditions in Python (~0.07 ms),",
        "the decision log's write on the writer thread (it takes the GIL), and on a 100k-profile",
        "heap the garbage collector's full collections (p99).",
        "",
    ]


def http(h: dict[str, Any]) -> list[str]:
    lines = [
        "## decide over HTTP (`loopwise serve`, one process, SQLite)",
        "",
        f"{h['users']} users seeded through `/v1/batch`; sample catalog. Load generators run on",
        "the same machine as the server (they share its cores).",
        "",
    ]
    wrk = h.get("wrk")
    if wrk is None:
        lines += [f"wrk rows skipped: {h.get('wrk_note')}", ""]
    else:
        lines += [
            f"Saturated, `wrk -t2 -c{h['connections']} -d{h['seconds']}s --latency` "
            "(decide: a Lua script POSTs the 3-slot page for random users with the server key):",
            "",
            "| route | requests/s | p50 ms | p99 ms | non-2xx |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, row in (("GET /healthz", wrk["health"]), ("POST /v1/decide", wrk["decide"])):
            lines.append(
                f"| {name} | {row['requests_per_s']:.0f} | {row['p50_ms']:.2f} | "
                f"{row['p99_ms']:.2f} | {row['non_2xx']} |"
            )
        lines += [
            "",
            f"Ratio decide / health throughput: **{wrk['ratio']:.2f}**. "
            + _goal(wrk["ratio"] >= 0.7, "≥ 0.70"),
            "",
        ]
    lines += [
        "At fixed rates (open-loop client: urllib3 keep-alive connections in 64 threads; latency "
        "from each request's due time, so queueing is not hidden):",
        "",
        "| target req/s | achieved req/s | requests | p50 ms | p99 ms | non-200 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in h["paced"]:
        lines.append(
            f"| {row['rate']:.0f} | {row['achieved_per_s']:.0f} | {row['requests']} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['non_200']} |"
        )
    at_500 = [row for row in h["paced"] if row["rate"] == 500.0]
    if at_500:
        lines += ["", _goal(at_500[0]["p99_ms"] <= 10.0, "p99 ≤ 10 ms at 500 req/s")]
    lines += [
        "What stands in the way: the health route costs the stack ~0.4 ms of one core per",
        "request here, so a ratio of 0.7 leaves decide ~0.15 ms of its own work, while decide",
        "in-process alone takes ~0.5 ms (p50). The ratio compares decide's Python work",
        "(request validation, segments, strategies, the response model, the decision log",
        "record) with the stack's own per-request cost (uvicorn, Starlette middleware). One",
        "server process runs Python on one core at a time; the load generator takes",
        "the other.",
        "",
    ]
    return lines


def ingest(i: dict[str, Any]) -> list[str]:
    http_, raw = i["http"], i["raw_sqlite"]
    lines = [
        "## ingest, HTTP `/v1/batch`, 100-event batches, durable (SQLite WAL, synchronous=FULL)",
        "",
        "| path | events | seconds | events/s |",
        "| --- | --- | --- | --- |",
        f"| loopwise serve, {i['concurrency']} concurrent clients | {http_['events']} | "
        f"{http_['seconds']:.2f} | {http_['events_per_s']:.0f} |",
        f"| raw SQLite inserts of the same rows, one commit per batch | {raw['events']} | "
        f"{raw['seconds']:.2f} | {raw['events_per_s']:.0f} |",
        "",
        f"Ratio loopwise / raw SQLite: **{i['ratio_to_raw']:.2f}** (goal ≥ 0.25). "
        f"Non-200 replies: {http_['non_200']}. "
        + _goal(http_["events_per_s"] >= 20_000, "≥ 20,000 events/s"),
        "",
    ]
    profile = i.get("profile")
    if profile:
        writer_us, parse_us = profile["writer_us_per_event"], profile["parse_us_per_event"]
        lines += [
            "Where the time goes (the same batches in process, 8 threads parsing and submitting",
            "as the HTTP handlers do): the writer thread spends "
            f"**{writer_us:.0f} µs of CPU per event** (`time.thread_time`, no profiler) and the",
            f"parsing threads {parse_us:.0f} µs; at 20,000 events/s the whole process may spend",
            "50 µs per event (all Python threads share one GIL, so work moved off the writer",
            "thread still costs the same CPU). Shares of the writer thread's time under cProfile",
            "(which inflates code made of many small calls):",
            "",
            "| stage | share |",
            "| --- | --- |",
            *(f"| {label} | {share:.0%} |" for label, share in profile["shares"].items()),
            "",
        ]
    lines += [
        "What stands in the way: every event is folded in Python before its 200 (the reducer",
        "copies and updates a profile of ~40 fields, the touched profile's segments are",
        "re-evaluated, the new state is encoded and written, the views are told), and every",
        "event in this benchmark belongs to a different person, so nothing is shared across a",
        "batch. Made cheaper for this run: segment membership computes only the attribute groups",
        "conditions read and folds the `context.*` leaves to constants (outside a request the",
        "context is empty), condition leaves inline their path walk and compare numbers",
        "directly, `Profile.copy` is generated straight-line code, ISO timestamps are formatted",
        "once per value, the consent gate skips consent reads while nobody has chosen, and",
        "batch parsing checks nesting without building locations. Getting to 50 µs per event",
        "needs the fold itself out of Python per event (a compiled reducer and condition",
        "evaluator) or the projection on more cores than one GIL (several processes, as the",
        "PostgreSQL + Redis mode does).",
        "",
    ]
    return lines


def freshness(f: dict[str, Any]) -> list[str]:
    lines = [
        "## freshness: event 200 → first decision that reflects it",
        "",
        "`POST /v1/track` (Product Viewed) then `POST /v1/decide` for the `recently-viewed` slot",
        "until the item shows; the clock starts at the track's 200. Meanwhile another thread",
        f"ingests {f.get('background_rate', 0):,.0f} events/s (100-event batches over 20,000 "
        f"users; achieved {f.get('achieved_rate', 0):,.0f}/s, "
        f"{f.get('background_failures', 0)} non-200).",
        "",
        "| trials | p50 ms | p99 ms | max ms | most decides needed |",
        "| --- | --- | --- | --- | --- |",
        f"| {f['trials']} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['max_ms']:.2f} | "
        f"{f['max_decides']} |",
        "",
        _goal(f["p99_ms"] <= 50.0, "≤ 50 ms")
        + " The ingest reply is sent after the event is committed and applied to the views,",
        "so the first decide already reflects it: freshness is one decide round trip (plus",
        "the queueing behind the background load).",
    ]
    if f["max_decides"] > 1:
        lines += [
            "In at least one trial the first decide did not show the item and a second did.",
            "Not confirmed; the likely cause is a strategy overrunning its 50 ms time budget on",
            "the loaded machine (the slot then serves its static fallback).",
        ]
    return [*lines, ""]


def memory(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## memory per profile (the engine's in-process profile cache)",
        "",
        "reducer (a cross-check, not the engine's cache): each profile folded by",
        "`profiles.reducer.reduce` from its own synthetic events (a user favouring one category:",
        "views, adds, orders) and kept as a decoded `Profile` in a dict; tracemalloc counts what",
        "stays allocated. profile view: the engine's bounded `views.profiles.ProfileView` filled",
        "to its limit the way the projector fills it (1,000 reducer-built templates cloned under",
        "new ids): the newest tenth decoded (hot tier), the rest as their encoded record,",
        "zlib-compressed once the profile left the hot tier, equal memberships shared.",
        "tracemalloc up to 100k (its bookkeeping also inflates that row's RSS), RSS growth at",
        "every size.",
        "",
        "| method | profiles | events/profile | tracemalloc B/profile | RSS B/profile | "
        "stored JSON B/profile | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        traced, rss = row["traced_bytes_per_profile"], row["rss_bytes_per_profile"]
        lines.append(
            f"| {row['method']} | {row['profiles']} | {row['events_per_profile']} | "
            f"{'' if traced is None else f'{traced:.0f}'} | "
            f"{'' if rss is None else f'{rss:.0f}'} | "
            f"{row['record_bytes_per_profile']:.0f} | {row['seconds']:.1f} |"
        )
    cached = [row for row in rows if row["method"] == "profile view"] or rows
    worst = max((row["traced_bytes_per_profile"] or row["rss_bytes_per_profile"]) for row in cached)
    lines += [
        "",
        _goal(worst <= 2048, "≤ 2 KB per cached profile (profile view rows)"),
        "A decoded profile is a Python object graph (datetimes, three affinity dicts, per-day",
        "counts as a dict of dicts, a dozen small lists): about 4.5 KB (the reducer row), so",
        "only the hot tier holds decoded profiles. The other nine tenths cost their compressed",
        "record (~0.9 KB for a 1.8 KB JSON record) plus the LRU's entry; a read of one of them",
        "decompresses and decodes it once and moves it to the hot tier. The cache is bounded",
        "(`profiles.cache_profiles`, default 100,000); others load from storage when next",
        "needed. Compressing costs one `zlib.compress` (level 1) per profile leaving the hot",
        "tier, on the thread that pushed it out.",
        "",
    ]
    return lines
