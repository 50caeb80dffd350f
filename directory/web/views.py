"""Page views. Each page reads what the system believes and asks ``verification`` for the badge."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, url_for

from directory.extensions import db
from directory.registry import numbers
from directory.registry.models import Practitioner, VerificationCheck
from directory.registry.verification import verdict

web = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)


@web.get("/")
def home():
    total = db.session.query(db.func.count(Practitioner.id)).scalar()
    return render_template("home.html", total=total)


@web.get("/practitioners/<number>")
def practitioner(number: str):
    try:
        canonical = numbers.normalise(number)
    except numbers.RegistrationNumberError:
        abort(404)
    if canonical != number:
        return redirect(url_for("web.practitioner", number=canonical), code=301)
    found = db.session.scalar(
        db.select(Practitioner).where(Practitioner.registration_number == canonical)
    )
    if found is None:
        abort(404)
    history = db.session.scalars(
        db.select(VerificationCheck)
        .where(VerificationCheck.practitioner_id == found.id)
        .order_by(VerificationCheck.id.desc())
        .limit(20)
    ).all()
    record_url = current_app.config["HPCSA_PUBLIC_RECORD_URL"].format(
        number=numbers.register_format(canonical)
    )
    return render_template(
        "practitioner.html",
        p=found,
        verdict=verdict(found),
        history=history,
        record_url=record_url,
    )
