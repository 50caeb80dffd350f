"""The scheduled recheck job: ``flask registry recheck`` (see docs/recheck.md).

Pieces, each small and tested on its own: ``claims`` (leases), ``ratelimit`` (the shared
token bucket), ``retry`` (backoff with full jitter), ``breaker`` (stop when the register
looks down), ``runner`` (the asyncio run), ``progress`` and ``cli``.
"""
