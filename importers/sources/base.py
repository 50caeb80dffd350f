"""The one small interface every register source implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from flask import Flask

from directory.registry.lookups import LookupResult


@runtime_checkable
class RegisterSource(Protocol):
    """Looks one canonical registration number up and says what the register answered.

    A source never raises for the register's faults: timeouts, HTTP errors and unreadable
    answers come back as a ``LookupResult`` with ``Outcome.ERROR``.
    """

    name: str

    def lookup(self, registration_number: str) -> LookupResult: ...

    def close(self) -> None: ...


def source_for_app(app: Flask, timeout: float | None = None) -> RegisterSource:
    """The configured live source (the HPCSA iRegister client, or a stand-in at HPCSA_URL);
    ``timeout``: seconds per request instead of HPCSA_TIMEOUT (a person is waiting)."""
    from importers.sources.hpcsa import HpcsaClient

    config = app.config if timeout is None else {**app.config, "HPCSA_TIMEOUT": timeout}
    return HpcsaClient.from_config(config)
