"""How the accounts domain asks the register about one number, without knowing who asks.

``directory/`` never imports ``importers/``: the app is handed a look-up function at start-up
(``install_register_lookup``; ``wsgi.py`` installs the live iRegister client, tests install
one pointed at the fake iRegister). It takes a canonical registration number and returns
the register's ``LookupResult``; it never raises for the register's faults.

The answer is recorded through the registry's rules (``record_check``), exactly as
``flask registry verify`` records it, so a clinic's look-up is one more register answer in the
practitioner's history. A failed look-up stores nothing and moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from directory.registry.checks import new_practitioner, record_check
from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.statuses import Outcome

EXTENSION = "register_lookup"
RegisterLookup = Callable[[str], LookupResult]


class RegisterUnavailable(RuntimeError):
    """No look-up is installed, or the register gave no usable answer."""


def install_register_lookup(app: Flask, lookup: RegisterLookup) -> None:
    app.extensions[EXTENSION] = lookup


def ask_and_record(session: Session, number: str) -> tuple[LookupResult, Practitioner | None]:
    """Ask the register about ``number`` now and record its answer (the caller commits).

    Returns the answer and the practitioner row (None when the register does not know the
    number and no row existed). Raises ``RegisterUnavailable`` when there is no answer.
    """
    lookup: RegisterLookup | None = current_app.extensions.get(EXTENSION)
    if lookup is None:
        raise RegisterUnavailable("this service is not connected to the register")
    result = lookup(number)
    if result.outcome is Outcome.ERROR:
        raise RegisterUnavailable(result.error or "the register did not answer")
    practitioner = session.scalar(
        select(Practitioner).where(Practitioner.registration_number == number)
    )
    if practitioner is None and result.outcome is not Outcome.OK:
        return result, None
    if practitioner is None:
        practitioner = new_practitioner(number)
    record_check(session, practitioner, result, RegistryPolicy.from_config(current_app.config))
    return result, practitioner
