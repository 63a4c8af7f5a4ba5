"""The bundled sample workspace: a demo sports store (``loopwise.yaml`` + ``items.jsonl``)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent
WORKSPACE_FILE = SAMPLE_DIR / "loopwise.yaml"
ITEMS_FILE = SAMPLE_DIR / "items.jsonl"
