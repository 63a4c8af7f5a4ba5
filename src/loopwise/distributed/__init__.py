"""Loopwise on PostgreSQL + Redis with several workers (and hosts): projection partitioned by
profile (:mod:`.claims`), caches kept in step through Redis (:mod:`.bus`, :mod:`.views`), the
pieces composition swaps in (:mod:`.scale`) and ``loopwise serve --workers N`` (:mod:`.serve`).
See docs/scale.md."""
