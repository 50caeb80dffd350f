"""The public pages' forms (Flask-WTF: each carries a CSRF token). Fields only carry text:
the rules that judge a report are in ``directory.reports.services``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, TextAreaField


class ConcernForm(FlaskForm):
    reason = RadioField("What is wrong?", choices=[], validate_choice=False)
    message = TextAreaField("Anything else we should know? (optional)")


class LiveCheckForm(FlaskForm):
    number = HiddenField()
