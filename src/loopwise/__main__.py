from __future__ import annotations

from loopwise.cli import main

main()
