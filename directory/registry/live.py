"""Asking the register about one number now, on someone's request (a clinic adding a
practitioner; later a patient's "check this number now"), and recording the answer.

``directory/`` never imports ``importers/``: the app is handed the asking function at
start-up. ``importers.init_app`` installs one that asks the configured register through the
one politeness stack and the register budget every process and host shares; a test may
install its own. The answer is applied through ``recording.apply_answer``, like every other
live answer: a failure is recorded and moves nothing; a number the register does not list is
not stored.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy.orm import Session

from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import apply_answer
from directory.registry.statuses import Outcome

EXTENSION = "live_register_lookup"
LiveLookup = Callable[[str], LookupResult]  # a canonical number -> the register's answer


class RegisterUnavailable(RuntimeError):
    """No way to ask the register is installed, or it gave no usable answer."""


def install_live_lookup(app: Flask, lookup: LiveLookup) -> None:
    """Give the app its way of asking the register (never raises for the register's faults:
    a failure is a ``LookupResult`` with outcome ``error``)."""
    app.extensions[EXTENSION] = lookup


def ask_and_record(session: Session, number: str) -> tuple[LookupResult, Practitioner | None]:
    """Ask the register about ``number`` (canonical) now and record what it says (the caller
    commits). Returns the answer and the registration as written (None when the register
    does not list the number and the system held none).

    Raises ``RegisterUnavailable`` when the register gave no answer: the failure is recorded
    in the registration's history when there is one, and nothing else moves.
    """
    lookup: LiveLookup | None = current_app.extensions.get(EXTENSION)
    if lookup is None:
        raise RegisterUnavailable("this service is not connected to the register")
    result = lookup(number)
    effect = apply_answer(session, number, result, RegistryPolicy.from_config(current_app.config))
    if result.outcome is Outcome.ERROR:
        raise RegisterUnavailable(result.error or "the register did not answer")
    return result, effect.practitioner if effect is not None else None
