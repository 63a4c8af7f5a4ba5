"""What ``loopwise serve`` imports before it answers: the heavy libraries only training, the
statistics of a results request or a content model need stay out of start-up."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("implicit", "sklearn", "scipy.stats", "lightgbm", "optuna")


def test_serving_modules_do_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "import loopwise.cli, loopwise.api.app, loopwise.engine, loopwise.composition\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
