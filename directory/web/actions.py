"""What a patient can do on the public pages besides reading: report a concern about a
practitioner or a clinic, and ask the register about a number the directory has never
checked. Both are plain form posts (no JavaScript), CSRF-protected (Flask-WTF checks every
POST before a view runs), and throttled per client (``throttle.allowed``); a live check is
throttled site-wide too, and waits its turn in the register budget every look-up shares.
"""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import select

from directory.extensions import db
from directory.listings.models import Clinic
from directory.registry import numbers
from directory.registry.live import RegisterUnavailable, ask_and_record
from directory.registry.profile import find_practitioner, register_record_url
from directory.reports import services as reports
from directory.web import throttle
from directory.web.forms import ConcernForm, LiveCheckForm
from directory.web.views import MAX_NUMBER_TYPED, web

REPORTS_THROTTLED = (
    "Several reports have been sent from here, or to this site, in a short time. Please "
    "wait an hour and try again: what you wrote is still below, and nothing you sent "
    "before is lost."
)
CHECKS_THROTTLED = (
    "Too many numbers have been checked at the register from here, or from this site, "
    "just now. Try again in a few minutes, or look the number up on the HPCSA iRegister "
    "yourself (link above)."
)


# --- reports of concern -------------------------------------------------------------------


def _report_page(subject: str, form: ConcernForm, errors: dict, status: int = 200, **target):
    return render_template(
        "report.html",
        subject=subject,
        form=form,
        reasons=reports.reasons_for(subject),
        errors=errors,
        message_max=reports.MESSAGE_MAX,
        **target,
    ), status


def _file(subject: str, back: str, **target):
    """The report form (GET) or filing it (POST), for one practitioner or clinic."""
    form = ConcernForm()
    if request.method == "GET":
        return _report_page(subject, form, {}, **target)
    limits = {"REPORT_LIMIT_PER_CLIENT": "client", "REPORT_LIMIT_SITE": throttle.SITE}
    if not throttle.allowed("report", limits):
        return _report_page(subject, form, {"form": REPORTS_THROTTLED}, 429, **target)
    try:
        reports.file_report(
            db.session,
            reason=form.reason.data,
            message=form.message.data,
            **{k: v for k, v in target.items() if k in ("practitioner", "clinic")},
        )
    except reports.Invalid as exc:
        db.session.rollback()
        return _report_page(subject, form, exc.errors, 422, **target)
    db.session.commit()
    return redirect(url_for("web.report_received", about=subject, back=back), code=303)


@web.route("/practitioners/<number>/report", methods=["GET", "POST"])
def report_practitioner(number: str):
    try:
        found = find_practitioner(numbers.normalise(number[:MAX_NUMBER_TYPED]))
    except numbers.RegistrationNumberError:
        found = None
    if found is None:
        abort(404, description="This directory has no practitioner at this address to report.")
    back = url_for("web.practitioner", number=found.registration_number)
    name = found.display_name or found.registration_number
    return _file("practitioner", back, practitioner=found, name=name, back_url=back)


@web.route("/clinics/<slug>/report", methods=["GET", "POST"])
def report_clinic(slug: str):
    found = db.session.scalar(select(Clinic).where(Clinic.slug == slug))
    if found is None:
        abort(404, description="There is no clinic at this address in the directory.")
    back = url_for("web.clinic", slug=found.slug)
    return _file("clinic", back, clinic=found, name=found.name, back_url=back)


@web.get("/report-received")
def report_received():
    back = request.args.get("back", "")
    # Only a path on this site: never a link elsewhere from a parameter anyone can write.
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = url_for("web.home")
    return render_template(
        "report_received.html",
        about="clinic" if request.args.get("about") == "clinic" else "practitioner",
        back_url=back,
    )


# --- checking a number at the register now --------------------------------------------


def _check_page(canonical: str, status: int, **outcome):
    return render_template(
        "check.html",
        typed=canonical,
        canonical=canonical,
        error=None,
        record_url=register_record_url(canonical),
        **outcome,
    ), status


@web.post("/check/live")
def check_live():
    """Ask the register about a number the directory has never checked; land on the answer."""
    typed = (LiveCheckForm().number.data or "")[:MAX_NUMBER_TYPED]
    try:
        canonical = numbers.normalise(typed)
    except numbers.RegistrationNumberError:
        return redirect(url_for("web.check", number=typed), code=303)  # the page says why
    if find_practitioner(canonical) is not None:
        return redirect(url_for("web.practitioner", number=canonical), code=303)
    limits = {"LIVE_CHECK_LIMIT_PER_CLIENT": "client", "LIVE_CHECK_LIMIT_SITE": throttle.SITE}
    if not throttle.allowed("live-check", limits):
        return _check_page(canonical, 429, live_error=CHECKS_THROTTLED)
    try:
        _, found = ask_and_record(db.session, canonical)
    except RegisterUnavailable:
        db.session.commit()  # a failure is history where a registration exists; nothing moved
        return _check_page(canonical, 503, live_unavailable=True)
    db.session.commit()
    if found is None:
        return _check_page(canonical, 404, live_not_found=True)
    return redirect(url_for("web.practitioner", number=canonical), code=303)
