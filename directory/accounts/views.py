"""The account pages, under ``/account/`` (and "Is this your clinic?" on a clinic's page).

Every page that changes something is a POST form with a CSRF token; every rule is in
``services``. A clinic user reaches only their own clinic: another clinic's pages answer 404.
"""

from __future__ import annotations

import logging
from functools import wraps

from flask import (
    Blueprint,
    abort,
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from directory import ratelimits
from directory.accounts import forms, links, mail
from directory.accounts import services as svc
from directory.accounts.models import User
from directory.extensions import db
from directory.listings import standing
from directory.listings.models import Clinic
from directory.listings.places import provinces
from directory.registry.verification import verdict
from directory.reports import services as concerns

log = logging.getLogger(__name__)

accounts = Blueprint("accounts", __name__, template_folder="templates")

SIGN_IN_REFUSED = "That email and password do not match an account."
THROTTLED = (
    "Too many sign-in attempts. Wait a few minutes before trying again, or reset your password."
)
CLAIMS_THROTTLED = (
    "Too many claim emails were asked for, for this clinic or from your address. Wait a few "
    "minutes before trying again."
)


@accounts.after_request
def _never_cached(response):
    """Account pages show a person's own data (and a new token, once): no cache keeps them."""
    if request.path.startswith("/account"):
        response.headers["Cache-Control"] = "private, no-store"
    return response


# --- helpers ------------------------------------------------------------------------------


def actor() -> svc.Actor:
    return svc.Actor(user=current_user._get_current_object())


def absolute(endpoint: str, **values) -> str:
    """An absolute link for an email: from PUBLIC_BASE_URL, or the trusted request host."""
    return url_for(endpoint, _external=True, **values)


def clinic_for_user(slug: str) -> Clinic:
    """The clinic, when the signed-in user may edit it; 404 otherwise (even if it exists)."""
    clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == slug))
    if clinic is None or not actor().may_edit(clinic):
        abort(404, description="There is no such clinic in your account.")
    return clinic


def site_admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_site_admin:
            abort(403, description="This page is for site admins.")
        return view(*args, **kwargs)

    return wrapped


def public_guard():
    """A suspended clinic's public page, its report form and API answer 404 while it is
    suspended."""
    if request.endpoint in ("web.clinic", "web.report_clinic", "clinics.clinic"):
        slug = (request.view_args or {}).get("slug", "")
        if standing.suspended_slug(db.session, slug):
            abort(404, description="This clinic is not shown in the directory at present.")


# --- signing in and out -------------------------------------------------------------------


def _throttle_keys(email: str, kind: str = "login") -> list[tuple[str, ...]]:
    """The limits one attempt counts against: per account and per client address. Reset
    requests (``kind="reset"``) count apart from sign-ins, so that a stranger asking for
    resets never locks the owner out of signing in; so do claim emails (``kind="claim"``,
    with the clinic's id for the account: per clinic and per visitor)."""
    config = current_app.config
    return [
        (config["LOGIN_LIMIT_PER_ACCOUNT"], f"{kind}-account", email.strip().lower()[:254]),
        (config["LOGIN_LIMIT_PER_ADDRESS"], f"{kind}-address", ratelimits.client_key()),
    ]


def _start_session(user: User) -> None:
    """A new session for ``user`` (the old one and its CSRF token dropped), opened on the
    server too, so that signing out can end it there."""
    session.clear()
    session.permanent = True
    svc.open_session(db.session, user)
    db.session.commit()
    login_user(user)


@accounts.route("/account/login", methods=["GET", "POST"])
def login():
    form = forms.LoginForm()
    if request.method == "POST":
        if not form.validate():  # only the CSRF token is validated here
            abort(400, description="The form had expired. Reload the page and sign in again.")
        email = (form.email.data or "")[:300]
        keys = _throttle_keys(email)
        if not ratelimits.room(keys, count=False):
            return render_template("accounts/login.html", form=form, error=THROTTLED), 429
        user = svc.authenticate(db.session, email, form.password.data or "")
        if user is None:
            ratelimits.count_against(keys)
            return render_template("accounts/login.html", form=form, error=SIGN_IN_REFUSED), 401
        _start_session(user)
        return redirect(url_for("accounts.home"))
    return render_template("accounts/login.html", form=form, error=None)


@accounts.post("/account/logout")
def logout():
    if not forms.ActionForm().validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    if current_user.is_authenticated:
        svc.end_session(db.session, current_user)
        db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("accounts.login"))


@accounts.post("/account/logout-everywhere")
@login_required
def logout_everywhere():
    if not forms.ActionForm().validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    svc.sign_out_everywhere(db.session, current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out on every device.")
    return redirect(url_for("accounts.login"))


@accounts.get("/account/")
@login_required
def home():
    if current_user.is_site_admin:
        clinics = db.session.scalars(db.select(Clinic).order_by(Clinic.name)).all()
        suspended = svc.suspended_clinic_ids(db.session)
        return render_template(
            "accounts/admin_home.html",
            clinics=clinics,
            suspended=suspended,
            held=len(svc.held_listings(db.session)),
            reports=concerns.count_open(db.session),
            action=forms.ActionForm(),
        )
    return redirect(url_for("accounts.clinic", slug=current_user.clinic.slug))


# --- a clinic's pages ---------------------------------------------------------------------


@accounts.get("/account/clinics/<slug>")
@login_required
def clinic(slug: str):
    found = clinic_for_user(slug)
    return _clinic_page(found)


def _clinic_page(found: Clinic, add_form=None, errors=None, status: int = 200):
    return render_template(
        "accounts/clinic.html",
        clinic=found,
        listings=svc.clinic_listings(db.session, found),
        held=svc.held_listings(db.session, found),
        suspension=svc.suspension_of(found),
        add_form=add_form or forms.AddListingForm(),
        action=forms.ActionForm(),
        may_manage=actor().may_manage(found),
        errors=errors or {},
    ), status


@accounts.route("/account/clinics/<slug>/profile", methods=["GET", "POST"])
@login_required
def profile(slug: str):
    found = clinic_for_user(slug)
    form = forms.ProfileForm()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        changes = {name: getattr(form, name).data for name in svc.PROFILE_FIELDS}
        try:
            svc.update_profile(db.session, actor(), found, changes, form.version.data)
            db.session.commit()
            flash("The clinic's profile is saved.")
            return redirect(url_for("accounts.profile", slug=found.slug))
        except svc.Invalid as exc:
            db.session.rollback()
            errors, status = exc.errors, 422
        except svc.AccountError as exc:
            db.session.rollback()
            errors, status = {"form": exc.message}, exc.status
    else:
        for name, value in svc.profile_of(found).items():
            getattr(form, name).data = "" if value is None else value
        form.version.data = found.version
    return render_template(
        "accounts/profile.html",
        clinic=found,
        form=form,
        errors=errors,
        provinces=provinces(),
    ), status


@accounts.post("/account/clinics/<slug>/listings")
@login_required
def add_listing(slug: str):
    found = clinic_for_user(slug)
    form = forms.AddListingForm()
    if not form.validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    errors: dict[str, str] = {}
    status = 200
    try:
        outcome = svc.add_listing(
            db.session,
            actor(),
            found,
            registration_number=form.registration_number.data,
            name=form.name.data,
            services=forms.split_services(form.services.data),
            description=form.description.data,
        )
        db.session.commit()
        if outcome.held is not None:
            flash(
                f"The register spells this practitioner's name {outcome.register_name!r}, which "
                f"does not match {outcome.held.name_given!r}: the listing waits for a site "
                "admin's review and is not public until approved."
            )
        else:
            flash(f"{outcome.register_name} is listed.")
        return redirect(url_for("accounts.clinic", slug=found.slug))
    except svc.Invalid as exc:
        db.session.rollback()
        errors, status = exc.errors, 422
    except svc.RegisterUnavailable:
        db.session.rollback()
        errors = {
            "registration_number": "The HPCSA register did not answer just now, so the number "
            "could not be checked. Nothing was saved: try again in a few minutes. How the "
            f"register has been answering recently: {url_for('status.public_status')}"
        }
        status = 503
    except svc.AccountError as exc:
        db.session.rollback()
        errors, status = {"form": exc.message}, exc.status
    return _clinic_page(found, form, errors, status)


@accounts.route("/account/clinics/<slug>/listings/<number>", methods=["GET", "POST"])
@login_required
def edit_listing(slug: str, number: str):
    found = clinic_for_user(slug)
    try:
        listing = svc.find_listing(db.session, found, number)
    except svc.NotFound as exc:
        abort(404, description=exc.message)
    form = forms.EditListingForm()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        changes = {
            "services": forms.split_services(form.services.data),
            "description": form.description.data or "",
        }
        try:
            svc.update_listing(db.session, actor(), found, number, changes, form.version.data)
            db.session.commit()
            flash("The listing is saved.")
            return redirect(url_for("accounts.clinic", slug=found.slug))
        except svc.Invalid as exc:
            db.session.rollback()
            errors, status = exc.errors, 422
        except svc.AccountError as exc:
            db.session.rollback()
            errors, status = {"form": exc.message}, exc.status
        listing = svc.find_listing(db.session, found, number)
    else:
        form.services.data = ", ".join(s.name for s in listing.services)
        form.description.data = listing.description
        form.version.data = listing.version
    return render_template(
        "accounts/listing.html",
        clinic=found,
        listing=listing,
        form=form,
        remove=forms.ActionForm(version=listing.version),
        errors=errors,
    ), status


@accounts.post("/account/clinics/<slug>/listings/<number>/remove")
@login_required
def remove_listing(slug: str, number: str):
    found = clinic_for_user(slug)
    form = forms.ActionForm()
    if not form.validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    try:
        svc.remove_listing(db.session, actor(), found, number, form.version.data)
        db.session.commit()
        flash(f"{number} is no longer listed.")
    except svc.AccountError as exc:
        db.session.rollback()
        return _clinic_page(found, errors={"form": exc.message}, status=exc.status)
    return redirect(url_for("accounts.clinic", slug=found.slug))


@accounts.get("/account/clinics/<slug>/audit")
@login_required
def audit(slug: str):
    found = clinic_for_user(slug)
    return render_template(
        "accounts/audit.html", clinic=found, entries=svc.audit_log(db.session, found)
    )


# --- users and tokens (a clinic's admins) -------------------------------------------------


def _manageable(slug: str) -> Clinic:
    found = clinic_for_user(slug)
    if not actor().may_manage(found):
        abort(403, description="Only the clinic's admins can manage its users and API tokens.")
    return found


@accounts.route("/account/clinics/<slug>/tokens", methods=["GET", "POST"])
@login_required
def tokens(slug: str):
    found = _manageable(slug)
    form = forms.TokenForm()
    shown_once = None
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        try:
            shown_once, _ = svc.create_token(db.session, actor(), found, form.name.data)
            db.session.commit()
            form.name.data = ""
        except svc.AccountError as exc:
            db.session.rollback()
            errors = getattr(exc, "errors", {"form": exc.message})
            status = exc.status
    return render_template(
        "accounts/tokens.html",
        clinic=found,
        form=form,
        tokens=svc.clinic_tokens(db.session, found),
        shown_once=shown_once,
        action=forms.ActionForm(),
        errors=errors,
    ), status


def _manage(slug: str, change, done: str, back: str):
    """A clinic admin's one-button change (revoke a token, remove a user, cancel an
    invitation): the form's CSRF token checked, ``change(found)`` applied and committed, or
    refused with its own status; then back to the ``back`` page."""
    found = _manageable(slug)
    if not forms.ActionForm().validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    try:
        said = change(found)
        db.session.commit()
        flash(done.format(said))
    except svc.AccountError as exc:
        db.session.rollback()
        abort(exc.status, description=exc.message)
    return redirect(url_for(back, slug=found.slug))


@accounts.post("/account/clinics/<slug>/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(slug: str, token_id: int):
    return _manage(
        slug,
        lambda found: svc.revoke_token(db.session, actor(), found, token_id),
        "The token is revoked: it no longer works.",
        "accounts.tokens",
    )


@accounts.route("/account/clinics/<slug>/users", methods=["GET", "POST"])
@login_required
def users(slug: str):
    found = _manageable(slug)
    form = forms.InviteForm()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired or the role is unknown. Try again.")
        try:
            email = svc.normalise_email(form.email.data)
            if svc.user_by_email(db.session, email) is not None:
                raise svc.Invalid({"email": f"{email} already has an account"})
            token = links.issue(db.session, "invite", found, email, form.role.data)
            sent = mail.send(
                email,
                f"You are invited to manage {found.name} in the HPCSA practitioner directory",
                f"{actor().label} invites you to help keep {found.name}'s listings up to date "
                f"in the HPCSA practitioner directory.\n\nChoose your password here (the link "
                f"works once, for {current_app.config['INVITATION_MAX_AGE']}):\n"
                f"{absolute('accounts.accept_invitation', token=token)}",
            )
            if not sent.ok:
                raise svc.AccountError(f"The invitation could not be sent: {sent.error}")
            svc.audit(
                db.session,
                actor(),
                "user.invite",
                clinic=found,
                target=email,
                after={"email": email, "role": form.role.data},
            )
            db.session.commit()
            flash(f"An invitation is on its way to {email}.")
            return redirect(url_for("accounts.users", slug=found.slug))
        except svc.AccountError as exc:
            db.session.rollback()
            errors = getattr(exc, "errors", {"form": exc.message})
            status = exc.status
    return render_template(
        "accounts/users.html",
        clinic=found,
        form=form,
        users=svc.clinic_users(db.session, found),
        invitations=links.pending(db.session, "invite", found.id),
        action=forms.ActionForm(),
        errors=errors,
    ), status


@accounts.post("/account/clinics/<slug>/users/<int:user_id>/remove")
@login_required
def remove_user(slug: str, user_id: int):
    return _manage(
        slug,
        lambda found: svc.remove_user(db.session, actor(), found, user_id),
        "The account is removed.",
        "accounts.users",
    )


@accounts.post("/account/clinics/<slug>/invitations/<link_id>/cancel")
@login_required
def cancel_invitation(slug: str, link_id: str):
    return _manage(
        slug,
        lambda found: svc.cancel_invitation(db.session, actor(), found, link_id),
        "The invitation to {} is cancelled: its link no longer works.",
        "accounts.users",
    )


# --- links sent by email: invitations, password resets, claims ----------------------------


def _password_page(title: str, form, errors: dict, status: int = 200, **extra):
    return render_template(
        "accounts/password.html", title=title, form=form, errors=errors, **extra
    ), status


def _read_password(form) -> str:
    if form.password.data != form.confirm.data:
        raise svc.Invalid({"confirm": "the two passwords are not the same"})
    return svc.check_password(form.password.data)


@accounts.route("/account/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    return _join_by_link("invite", token)


@accounts.route("/account/claim/<token>", methods=["GET", "POST"])
def claim_finish(token: str):
    return _join_by_link("claim", token)


def _join_by_link(purpose: str, token: str):
    """An invitation or a claim link followed: the password form, then the new account
    (``svc.join_by_link``), signed in. One flow for both; only the words differ."""
    heading = "Claim" if purpose == "claim" else "Invitation"
    try:
        issued, found = svc.link_to_join(db.session, purpose, token)
    except links.LinkInvalid as exc:
        return render_template("accounts/message.html", title=heading, text=str(exc)), 400
    title = f"Claim {found.name}" if purpose == "claim" else "Accept the invitation"
    form = forms.PasswordForm()
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        try:
            user = svc.join_by_link(db.session, issued, found, _read_password(form))
            db.session.commit()
        except svc.Invalid as exc:
            db.session.rollback()
            return _password_page(title, form, exc.errors, 422)
        except links.LinkInvalid as exc:
            db.session.rollback()
            return render_template("accounts/message.html", title=heading, text=str(exc)), 400
        _start_session(user)
        if purpose == "invite":
            return redirect(url_for("accounts.home"))
        flash(f"You are {found.name}'s admin.")
        return redirect(url_for("accounts.clinic", slug=found.slug))
    return _password_page(title, form, {}, email=issued.email)


def _send_after_response(to: str | None, subject: str, body: str) -> None:
    """Send the email once the answer has gone to the client (``to`` None: nothing is sent),
    so that how long the mail transport takes never shows in the answer's timing."""
    app = current_app._get_current_object()

    def send() -> None:
        if to is None:
            return
        with app.app_context():
            try:
                mail.send(to, subject, body)
            except Exception:  # the answer is gone: log, never raise into the server
                log.exception("an account email to %s could not be sent", to)

    @after_this_request
    def _later(response):
        response.call_on_close(send)
        return response


@accounts.route("/account/reset", methods=["GET", "POST"])
def reset_request():
    form = forms.ResetRequestForm()
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        email = (form.email.data or "").strip().lower()[:300]
        if not ratelimits.room(_throttle_keys(email, "reset")):
            return render_template("accounts/message.html", title="Reset", text=THROTTLED), 429
        # The same work whether or not the address has an account, so that the answer takes
        # as long: the user is looked up, a link made (from a hash nobody has, when there is
        # no account) and the email written; it is sent after the answer, or dropped.
        user = svc.user_by_email(db.session, email) if email else None
        token = links.make(
            "reset",
            {
                "u": user.id if user else 0,
                "h": links.fingerprint(user.password_hash if user else svc.DUMMY_HASH),
            },
        )
        _send_after_response(
            user.email if user else None,
            "Reset your password for the HPCSA practitioner directory",
            "Someone (we hope you) asked to reset your password. Choose a new one here "
            f"(the link works once, for {current_app.config['PASSWORD_RESET_MAX_AGE']}):\n"
            f"{absolute('accounts.reset_password', token=token)}\n\n"
            "If you did not ask, ignore this email: your password stays as it is.",
        )
        # the same answer whether or not the address has an account
        return render_template(
            "accounts/message.html",
            title="Check your email",
            text="If that address has an account, a link to reset its password is on its way.",
        )
    return render_template("accounts/reset_request.html", form=form)


@accounts.route("/account/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        payload = links.read("reset", token)
        user = db.session.get(User, payload.get("u"))
        if user is None or links.fingerprint(user.password_hash) != payload.get("h"):
            raise links.LinkInvalid("This link has already been used: ask for a new one.")
    except links.LinkInvalid as exc:
        return render_template("accounts/message.html", title="Reset", text=str(exc)), 400
    form = forms.PasswordForm()
    if request.method == "POST":
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        try:
            svc.set_password(db.session, user, _read_password(form), actor=svc.Actor(user=user))
            db.session.commit()
        except svc.Invalid as exc:
            db.session.rollback()
            return _password_page("Choose a new password", form, exc.errors, 422)
        logout_user()
        session.clear()
        flash("Your password is changed. Sign in with it.")
        return redirect(url_for("accounts.login"))
    return _password_page("Choose a new password", form, {}, email=user.email)


@accounts.route("/clinics/<slug>/claim", methods=["GET", "POST"])
def claim_start(slug: str):
    """ "Is this your clinic?": a link goes to the clinic's address on record, never elsewhere."""
    found = db.session.scalar(db.select(Clinic).where(Clinic.slug == slug))
    if found is None or svc.suspension_of(found) is not None:
        abort(404, description="There is no clinic at this address in the directory.")
    form = forms.ActionForm()
    has_admin = svc.count_admins(db.session, found) > 0
    if request.method == "POST" and not has_admin and found.email:
        if not form.validate():
            abort(400, description="The form had expired. Reload the page and try again.")
        if not ratelimits.room(_throttle_keys(str(found.id), "claim")):
            return render_template(
                "accounts/message.html", title="Claim", text=CLAIMS_THROTTLED
            ), 429
        token = links.issue(db.session, "claim", found, found.email)
        sent = mail.send(
            found.email,
            f"Is {found.name} your clinic? Confirm to manage its listings",
            f"Someone asked to manage {found.name}'s listings in the HPCSA practitioner "
            "directory. This email goes to the clinic's address on record, so whoever reads "
            "it can become the clinic's first admin here:\n"
            f"{absolute('accounts.claim_finish', token=token)}\n\n"
            f"The link works once, for {current_app.config['CLAIM_LINK_MAX_AGE']}. If nobody "
            "at the clinic asked, ignore this email: nothing changes.",
        )
        svc.audit(
            db.session,
            svc.Actor(name=f"a visitor from {request.remote_addr or 'an unknown address'}"),
            "clinic.claim_requested",
            clinic=found,
            target=found.slug,
            after={"sent": sent.ok, "address_on_record": True},
        )
        db.session.commit()
        return render_template(
            "accounts/message.html",
            title="Check the clinic's email",
            text=f"A link is on its way to {found.name}'s email address on record. Whoever "
            "reads that mailbox can follow it to become the clinic's first admin.",
        )
    return render_template("accounts/claim.html", clinic=found, form=form, has_admin=has_admin)


# --- site admins ----------------------------------------------------------------------------


@accounts.get("/account/moderation")
@site_admin_required
def moderation():
    return render_template(
        "accounts/moderation.html",
        held=svc.held_listings(db.session),
        reports=[
            (r, verdict(r.practitioner) if r.practitioner else None)
            for r in concerns.open_reports(db.session)
        ],
        reason_words=concerns.reason_words,
        action=forms.ActionForm(),
    )


@accounts.post("/account/moderation/reports/<int:report_id>/handled")
@site_admin_required
def report_handled(report_id: int):
    """A patient's report of concern, dealt with: it leaves the queue (kept, with who and when)."""
    if not forms.ActionForm().validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    try:
        concerns.mark_handled(db.session, report_id, current_user.email)
        db.session.commit()
        flash(f"Report {report_id} is marked handled.")
    except concerns.NotOpen as exc:
        db.session.rollback()
        flash(str(exc))
    return redirect(url_for("accounts.moderation"))


@accounts.post("/account/moderation/<int:held_id>/<any(approve, reject):decision>")
@site_admin_required
def decide(held_id: int, decision: str):
    if not forms.ActionForm().validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    try:
        held = svc.decide_held(db.session, actor(), held_id, decision == "approve")
        db.session.commit()
        flash(f"{held.registration_number} at {held.clinic.name}: {held.state}.")
    except svc.AccountError as exc:
        db.session.rollback()
        flash(exc.message)
    return redirect(url_for("accounts.moderation"))


@accounts.post("/account/clinics/<slug>/<any(suspend, restore):change>")
@site_admin_required
def suspend(slug: str, change: str):
    found = db.session.scalar(db.select(Clinic).where(Clinic.slug == slug))
    if found is None:
        abort(404)
    form = forms.SuspendForm()
    if not form.validate():
        abort(400, description="The form had expired. Reload the page and try again.")
    try:
        if change == "suspend":
            svc.suspend_clinic(db.session, actor(), found, form.reason.data or "")
        else:
            svc.restore_clinic(db.session, actor(), found)
        db.session.commit()
        flash(f"{found.name} is {'suspended' if change == 'suspend' else 'restored'}.")
    except svc.AccountError as exc:
        db.session.rollback()
        flash(exc.message)
    return redirect(url_for("accounts.home"))
