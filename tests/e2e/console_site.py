"""A console to test in a browser: a real ``loopwise serve`` on the sample store's slots and
segments with the simulator's catalog, seeded by the simulator over HTTP (decide, then each
visit's events), plus six visitors from California who looked at the pricing page twice, and one
console user of each role created with ``loopwise users create --password-stdin``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from loopwise.config import SAMPLE_WORKSPACE
from loopwise.sim.demo import DemoConfig, EnginePolicy, HttpClient, start_marker, write_data_dir
from loopwise.sim.runner import SimConfig, Simulation
from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, Server, start_server

PASSWORD = "console-test-password"
ROLES = ("viewer", "editor", "admin")
PRICING_VISITORS = [f"pricing-ca-{i}" for i in range(6)]
SEED_USERS, SEED_DAYS = 250, 3


@dataclass
class ConsoleSite:
    server: Server
    sim_start: Any

    @property
    def url(self) -> str:
        return self.server.url

    def email(self, role: str) -> str:
        return f"{role}@example.com"

    def admin(self) -> Any:
        return self.server.client(ADMIN_KEY)

    def simulate(self, *, seed: int, days: int, users: int, after_days: int) -> int:
        """Run the simulator against the server (decide + events per visit), starting
        ``after_days`` after the first simulation. Returns the visits."""
        config = SimConfig(
            seed=seed, n_users=users, days=days, start=self.sim_start + timedelta(days=after_days)
        )
        client = HttpClient(self.url, WRITE_KEY, SERVER_KEY, ADMIN_KEY)
        try:
            policy = EnginePolicy(client)
            Simulation(config).run(policy, keep_messages=False)
            return policy.visits
        finally:
            client.close()


def _workspace(data_dir: Path) -> Path:
    """The sample workspace with the simulator's catalog and a 5% global holdout."""
    sim = Simulation(SimConfig(seed=7, n_users=SEED_USERS, days=SEED_DAYS))
    written = write_data_dir(sim, DemoConfig(users=SEED_USERS, days=SEED_DAYS), data_dir)
    document = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["items"] = "items.jsonl"
    document["holdout"] = {"percent": 5}
    document.pop("experiments", None)
    written.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return written


def create_users(data_dir: Path) -> None:
    for role in ROLES:
        subprocess.run(
            [sys.executable, "-m", "loopwise", "users", "create", "--email", f"{role}@example.com",
             "--role", role, "--password-stdin", "--data-dir", str(data_dir)],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True,
        )  # fmt: skip


def pricing_visits(start: Any) -> list[dict[str, Any]]:
    at = (start + timedelta(days=SEED_DAYS - 1)).isoformat().replace("+00:00", "Z")
    return [
        {
            "type": "page",
            "anonymousId": visitor,
            "name": "Pricing",
            "properties": {"path": "/pricing"},
            "context": {"location": {"country": "US", "region": "CA"}},
            "messageId": f"{visitor}-{n}",
            "timestamp": at,
        }
        for visitor in PRICING_VISITORS
        for n in range(2)
    ]


def start_console_site(root: Path) -> ConsoleSite:
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    workspace = _workspace(data_dir)
    create_users(data_dir)
    server = start_server(data_dir, workspace=workspace, extra_args=("--event-time-clock",))
    site = ConsoleSite(server, SimConfig().start)
    client = HttpClient(server.url, WRITE_KEY, SERVER_KEY, ADMIN_KEY)
    try:
        client.ingest([start_marker(Simulation(SimConfig(seed=7, n_users=1, days=1)))])
    finally:
        client.close()
    site.simulate(seed=7, days=SEED_DAYS, users=SEED_USERS, after_days=0)
    with server.client(WRITE_KEY) as writer:
        response = writer.post("/v1/batch", json={"batch": pricing_visits(site.sim_start)})
        assert response.status_code == 200, response.text
    return site
