"""Journeys: triggered flows on the loop (docs/journeys.md).

- :mod:`~loopwise.journeys.spec` — the workspace's ``journeys:`` and ``webhooks:`` sections;
  :mod:`~loopwise.journeys.templates` — the built-in templates;
- :mod:`~loopwise.journeys.compiled` — a journey compiled once (and its holdout experiment);
- :mod:`~loopwise.journeys.machine` — the pure state machine ``step(state, input, journey,
  context) -> Stepped``; :mod:`~loopwise.journeys.state` — one person's state, as stored;
- :mod:`~loopwise.journeys.service` — the runner: a projection hook (the ingest job's unit of
  work) and the engine's clock; :mod:`~loopwise.journeys.outbox` — what actions queue;
- :mod:`~loopwise.journeys.delivery` — the delivery worker: signed webhooks, retries with
  exponential backoff, dead letters, idempotency keys.
"""
