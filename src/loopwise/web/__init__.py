"""Web pages served next to the API: the demo storefront (``/sample``) and ``/loopwise.js``."""

from __future__ import annotations
