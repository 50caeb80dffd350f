"""Register sources: the HPCSA iRegister client and register snapshot files."""

from importers.sources.base import RegisterSource, source_for_app

__all__ = ["RegisterSource", "source_for_app"]
