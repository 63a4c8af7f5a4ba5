"""``loopwise demo``: the simulated store running against a live engine, with an experiment.

The simulator (:mod:`loopwise.sim.runner`) plays a seeded population visiting a store. Each visit
asks the engine for its home-page slot (``POST /v1/decide``) and, when the visit ends, sends its
events (``POST /v1/batch``), so the next decision already reflects them. The workspace runs one
experiment on that slot — personalized (the trained ``hybrid`` model) against a control
(``popular``). The engine trains its models after the first simulated day and again every few
days (``POST /v1/admin/train``), and the experiment starts once the first model is served, so the
personalized arm is never an untrained stand-in. Every number the demo prints comes from the
engine's own experiment results
(``GET /v1/experiments/{key}/results``), computed from its exposure and event logs. The
simulator's ground truth per arm is printed beside them, labelled as such, as a check.

By default the engine is a real server process on a free port (``loopwise serve
--event-time-clock``: the engine's clock follows the simulated event times, so exposures and
outcomes line up with the simulated days); ``in_process=True`` calls an :class:`Engine` directly.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from loopwise.api.user_tokens import IDENTITY_SECRET_ENV, USER_TOKEN_CONTEXT_FIELD, user_token
from loopwise.clock import EventTimeClock
from loopwise.errors import ConfigError
from loopwise.sim.runner import ArmSummary, SimConfig, Simulation
from loopwise.sim.session import PolicyRequest, PolicyResponse, SlotAsk

EXPERIMENT = "personalized-vs-popular"
SLOT = "recommended"
CLICK_METRIC = "click"  # the experiment's content-click conversion
HERO_SLOT = "home_hero"
PRERENDER_TTL_SECONDS = 900
TRENDING_SLOT = "trending"
JOURNEY = "cart_abandonment"  # a cart-abandonment journey with a 20% holdout
JOURNEY_EXPERIMENT = f"journey-{JOURNEY}"
# the home page as the simulated visitor sees it (the hero shows no items)
HOME_PAGE = (SlotAsk(HERO_SLOT, 0), SlotAsk(SLOT, 4), SlotAsk(TRENDING_SLOT, 4))
BATCH_SIZE = 100  # events per POST /v1/batch
DB_FILE = "loopwise.db"  # the engine's database in a data directory (Engine.open)
REPORT_SEGMENTS = (
    "mobile",
    "desktop",
    "returning_visitor",
    "from_organic_search",
    "from_paid",
    "from_social",
    "from_email",
    "direct_traffic",
    "country_us",
    "country_gb",
    "country_de",
)


@dataclass(frozen=True)
class DemoConfig:
    days: int = 14
    users: int = 4000
    seed: int = 7
    in_process: bool = False
    personalized_strategy: str = "category_affinity"
    control_strategy: str = "popular"
    train_every_days: int = 0  # > 0: train after day 1, then every this many days


@dataclass
class DemoResult:
    """What the engine reported, and the simulator's ground truth beside it."""

    config: DemoConfig
    results: dict[str, Any]  # the engine's results for the whole population
    by_segment: dict[str, dict[str, Any]]  # segment key -> the engine's results in it
    daily: list[dict[str, Any]]  # the engine's results after each simulated day
    ground_truth: dict[str, ArmSummary]  # per arm, from the simulator (visits, not users)
    visits: int
    events: int
    seconds: float
    mode: str
    trainings: list[dict[str, Any]] = field(default_factory=list)  # model versions served
    # slot decisions by pre-render cache status (hit, miss, live), counted from the replies
    cache: dict[str, int] = field(default_factory=dict)
    journey: dict[str, Any] = field(default_factory=dict)  # the journey holdout's results

    @property
    def cache_hit_ratio(self) -> float:
        total = sum(self.cache.values())
        return self.cache.get("hit", 0) / total if total else 0.0


class EngineClient(Protocol):
    """The three calls the demo makes, over HTTP or in process."""

    def decide(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def ingest(self, messages: list[dict[str, Any]]) -> None: ...

    def results(self, experiment: str, segment: str | None = None) -> dict[str, Any]: ...

    def train(self) -> dict[str, Any]: ...


def demo_workspace(config: DemoConfig, experiment_start: datetime) -> dict[str, Any]:
    """The home page: a hero chosen by traffic source and device, the experiment's list slot
    (conversion and revenue per user as metrics) and a trending list. The hero and trending
    depend only on segments and context, so the pre-render cache serves them."""
    hero_rules = [
        {"id": "paid", "segments": ["from_paid"], "then": {"variant": "offer"}, "priority": 3},
        {"id": "email", "segments": ["from_email"], "then": {"variant": "welcome-back"},
         "priority": 2},
        {"id": "phone", "segments": ["mobile"], "then": {"variant": "app"}, "priority": 1},
    ]  # fmt: skip
    return {
        "workspace": "demo",
        "items": "items.jsonl",
        # a small store's trending list moves slowly: prerendered slots live 15 minutes
        "prerender": {"ttl_seconds": PRERENDER_TTL_SECONDS},
        "slots": [
            {
                "key": HERO_SLOT,
                "kind": "block",
                "description": "Home page hero",
                "variants": [
                    {"id": v, "content": {"headline": v}}
                    for v in ("plain", "offer", "welcome-back", "app")
                ],
                "rules": hero_rules,
            },
            {
                "key": SLOT,
                "kind": "list",
                "n": 4,
                "default_strategy": config.personalized_strategy,
                "description": "Home page recommendations",
            },
            {
                "key": TRENDING_SLOT,
                "kind": "list",
                "n": 4,
                "default_strategy": "trending",
                "description": "Trending now",
            },
        ],
        # an hour after an add to cart without an order, decide the reminder's content (the
        # trending slot, outside the experiment) for pickup; 20% held out measure its lift
        "journeys": [
            {
                "key": JOURNEY,
                "name": "Cart abandonment",
                "trigger": {"event": "Product Added"},
                "steps": [
                    {"id": "wait", "wait": "1h"},
                    {"id": "reminder", "action": "decide", "slot": TRENDING_SLOT},
                ],
                "exit": [{"event": "Order Completed"}],
                "reentry": {"allowed": True, "after": "7d"},
                "holdout_percent": 20,
            }
        ],
        "experiments": [
            {
                "key": EXPERIMENT,
                "slot": SLOT,
                "description": "Does personalization lift conversion over popular items?",
                "start": experiment_start.isoformat().replace("+00:00", "Z"),
                "arms": [
                    {"key": "control", "strategy": config.control_strategy},
                    {"key": "personalized", "strategy": config.personalized_strategy},
                ],
                # purchase is the verdict's metric; click (any content clicked after exposure,
                # the hero's and trending's too, which both arms share) is the slot's own effect,
                # measurable at a size where purchase conversion is not
                "metrics": [
                    {"key": "purchase", "kind": "conversion", "event": "Order Completed"},
                    {"key": "revenue", "kind": "revenue", "event": "Order Completed"},
                    {"key": CLICK_METRIC, "kind": "conversion", "event": "Content Clicked"},
                ],
            }
        ],
    }


def experiment_start(sim: Simulation, config: DemoConfig) -> datetime:
    """After the first day when the personalized arm is a model trained then, else at once."""
    trained = config.train_every_days > 0 and config.days > 1
    return sim.config.start + timedelta(days=1 if trained else 0)


def training_days(config: DemoConfig) -> set[int]:
    """The days after which the engine (re)trains: day 1, then every ``train_every_days``."""
    if config.train_every_days <= 0:
        return set()
    return set(range(0, config.days - 1, config.train_every_days))


def write_data_dir(sim: Simulation, config: DemoConfig, data_dir: Path) -> Path:
    """The workspace file and the simulated catalog, ready for ``loopwise serve``. A directory
    that already holds an engine is refused: the simulator's message ids are seeded, so a second
    run's events would be dropped as duplicates and the results would mix both runs."""
    if (data_dir / DB_FILE).exists():
        raise ConfigError(
            f"{data_dir} already holds a Loopwise engine ({DB_FILE}). Give --data-dir a new or "
            "empty directory, or leave it out to use a temporary one.",
            field="data_dir",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "items.jsonl").open("w", encoding="utf-8") as out:
        for item in sim.catalog.items:
            out.write(json.dumps(item.to_record()) + "\n")
    workspace = data_dir / "loopwise.yaml"
    document = demo_workspace(config, experiment_start(sim, config))
    workspace.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
    return workspace


def arm_of(response: dict[str, Any], experiment: str) -> str:
    """The arm the engine served, from the decision's experiment reason (``ref`` is
    ``"<experiment>:<arm>"``)."""
    prefix = experiment + ":"
    for slot in response.get("slots", []):
        for reason in slot.get("reasons", []):
            ref = reason.get("ref") or ""
            if reason.get("kind") == "experiment" and ref.startswith(prefix):
                return str(ref[len(prefix) :])
    return "not in experiment"


class EnginePolicy:
    """A simulator policy that asks the engine, and feeds it each visit's events afterwards."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.visits = 0
        self.events = 0
        self.cache: dict[str, int] = {"hit": 0, "miss": 0, "live": 0}

    def __call__(self, request: PolicyRequest) -> PolicyResponse:
        user: dict[str, str] = {"anonymous_id": request.anonymous_id}
        if request.user_id is not None:
            user["user_id"] = request.user_id
        body = {
            "user": user,
            "context": request.context,
            "slots": [
                {"slot": ask.slot, **({"n": ask.n} if ask.n else {})} for ask in request.slots
            ],
        }
        response = self.client.decide(body)
        for status in (response.get("cache") or {}).get("slots", {}).values():
            self.cache[status] = self.cache.get(status, 0) + 1
        items = {s["slot"]: [i["id"] for i in s.get("items", [])] for s in response["slots"]}
        self.visits += 1
        return PolicyResponse(response["decision_id"], items, arm_of(response, EXPERIMENT))

    def observe(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), BATCH_SIZE):
            self.client.ingest(messages[start : start + BATCH_SIZE])
        self.events += len(messages)


def start_marker(sim: Simulation) -> dict[str, Any]:
    """One event at the simulation's start, so the engine's event-time clock starts there."""
    return {
        "type": "track",
        "anonymousId": "loopwise-demo",
        "event": "Simulation Started",
        "messageId": f"loopwise-demo-start-{sim.config.seed}",
        "timestamp": sim.config.start.isoformat().replace("+00:00", "Z"),
    }


def run_demo(
    config: DemoConfig,
    data_dir: Path,
    *,
    on_day: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Simulate ``config.days`` days against the engine; ``on_day(day, visits)`` reports."""
    sim = Simulation(
        SimConfig(seed=config.seed, n_users=config.users, days=config.days, slots=HOME_PAGE)
    )
    workspace = write_data_dir(sim, config, data_dir)
    started = time.perf_counter()
    opened = _in_process(data_dir, workspace) if config.in_process else _server(data_dir, workspace)
    with opened as client:
        client.ingest([start_marker(sim)])
        policy = EnginePolicy(client)
        daily: list[dict[str, Any]] = []

        retrain_after = training_days(config)
        trainings: list[dict[str, Any]] = []

        def day_done(day: int, _messages: list[dict[str, Any]]) -> None:
            if day in retrain_after:
                trainings.append({"day": day + 1, **client.train()})
            snapshot = client.results(EXPERIMENT)
            daily.append({"day": day + 1, "results": snapshot})
            if on_day is not None:
                on_day(day, policy.visits)

        outcome = sim.run(policy, on_day=day_done, keep_messages=False)
        results = daily[-1]["results"] if daily else client.results(EXPERIMENT)
        by_segment = {}
        for segment in REPORT_SEGMENTS:
            found = client.results(EXPERIMENT, segment)
            if any(arm.get("users") for arm in found.get("arms", [])):
                by_segment[segment] = found
        journey = client.results(JOURNEY_EXPERIMENT)
    return DemoResult(
        config=config,
        results=results,
        by_segment=by_segment,
        daily=daily,
        ground_truth=dict(outcome.arms),
        visits=policy.visits,
        events=policy.events,
        seconds=time.perf_counter() - started,
        mode="in-process" if config.in_process else "HTTP",
        trainings=trainings,
        cache=dict(policy.cache),
        journey=journey,
    )


# --- engines ------------------------------------------------------------------------------------


class HttpClient:
    def __init__(
        self,
        url: str,
        write_key: str,
        server_key: str,
        admin_key: str,
        *,
        identity_secret: str | None = None,
    ) -> None:
        import httpx

        self._identity_secret = identity_secret
        # the server is on 127.0.0.1: no proxy from the environment may carry these calls
        self._admin = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=60,
            trust_env=False,
        )
        self._write = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {write_key}"},
            timeout=30,
            trust_env=False,
        )
        self._server = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {server_key}"},
            timeout=60,
            trust_env=False,
        )

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        return _ok(self._server.post("/v1/decide", json=body))

    def ingest(self, messages: list[dict[str, Any]]) -> None:
        """As the site's pages send them with the public write key: a signed-in visitor's
        messages carry the user token the site's server computed for them."""
        if self._identity_secret is not None:
            for message in messages:
                user_id = message.get("userId")
                if user_id:
                    context = message.setdefault("context", {})
                    context[USER_TOKEN_CONTEXT_FIELD] = user_token(self._identity_secret, user_id)
        _ok(self._write.post("/v1/batch", json={"batch": messages}))

    def results(self, experiment: str, segment: str | None = None) -> dict[str, Any]:
        params = {"segment": segment} if segment else {}
        return _ok(self._server.get(f"/v1/experiments/{experiment}/results", params=params))

    def train(self) -> dict[str, Any]:
        return _ok(self._admin.post("/v1/admin/train", timeout=600))

    def close(self) -> None:
        self._write.close()
        self._server.close()
        self._admin.close()


def _ok(response: Any) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


class InProcessClient:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        from loopwise.decide.request import DecideRequest

        response = self.engine.decide(DecideRequest.model_validate(body))
        decided: dict[str, Any] = response.model_dump(mode="json")
        return decided

    def ingest(self, messages: list[dict[str, Any]]) -> None:
        from loopwise.events.normalize import parse_request

        self.engine.ingest(
            parse_request({"batch": messages}, kind="batch", received_at=self.engine.clock())
        )

    def results(self, experiment: str, segment: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.engine.experiment_results(experiment, segment=segment)
        return found

    def train(self) -> dict[str, Any]:
        trained: dict[str, Any] = self.engine.train_models(wait=True)
        return trained


@contextmanager
def _in_process(data_dir: Path, workspace: Path) -> Iterator[EngineClient]:
    from loopwise.engine import Engine

    engine, _ = Engine.open(data_dir, workspace, clock=EventTimeClock(), environ={})
    try:
        yield InProcessClient(engine)
    finally:
        engine.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(data_dir: Path, workspace: Path) -> Iterator[EngineClient]:
    """``loopwise serve`` on a free port with one-off keys; stopped (and waited for) on exit."""
    port = _free_port()
    keys = {kind: f"lw_{kind}_demo_{secrets.token_hex(8)}" for kind in ("write", "server", "admin")}
    env = {**os.environ, **{f"LOOPWISE_{kind.upper()}_KEY": key for kind, key in keys.items()}}
    identity_secret = secrets.token_hex(16)  # the simulated site signs its signed-in users
    env[IDENTITY_SECRET_ENV] = identity_secret
    args = [sys.executable, "-m", "loopwise", "serve", "--port", str(port)]
    args += ["--data-dir", str(data_dir), "--workspace", str(workspace)]
    args += ["--event-time-clock", "--log-level", "warning"]
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log_path)
        client = HttpClient(
            url, keys["write"], keys["server"], keys["admin"], identity_secret=identity_secret
        )
        try:
            yield client
        finally:
            client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the engine exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the engine did not start:\n{log_path.read_text(errors='replace')}")
