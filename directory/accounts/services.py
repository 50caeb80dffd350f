"""What clinic accounts may do, in one place for the pages, the API and the command line.

Every function takes the acting ``Actor`` and checks what it may touch before changing
anything; every change is written through the listing rules (``directory.listings.imports``)
and recorded in the audit log in the same transaction. The caller commits.

Errors are exceptions with a plain message for the person: ``Invalid`` (per field),
``Stale`` (the edit was based on an older version: nothing overwritten), ``Forbidden``,
``NotFound``, ``TooManyLookups`` and ``RegisterUnavailable``.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from limits import parse
from rapidfuzz import fuzz
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from directory import ratelimits
from directory.accounts import links
from directory.accounts.models import (
    ApiToken,
    AuditEntry,
    ClinicSuspension,
    HeldListing,
    IssuedLink,
    Role,
    User,
    UserSession,
)
from directory.listings import standing
from directory.listings.imports import (
    CLINIC_KEYS,
    FieldError,
    ListingRules,
    clean_email,
    clean_text,
    validate_clinic,
)
from directory.listings.models import Clinic, Listing
from directory.registry import numbers
from directory.registry.live import RegisterUnavailable, ask_and_record
from directory.registry.models import Practitioner
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

__all__ = ["RegisterUnavailable"]

MIN_PASSWORD = 12
MAX_PASSWORD = 1000
TOKEN_PREFIX = "hpd_"
# Sessions one user keeps at once: a new sign-in beyond this ends the oldest, so that the
# sessions nobody signed out of (a browser closed, a cookie expired) do not pile up.
MAX_SESSIONS_PER_USER = 20
# The profile fields a clinic edits (its slug is its address and stays).
PROFILE_FIELDS = tuple(key for key in CLINIC_KEYS if key != "slug")
_hasher = PasswordHasher()
# Stands in for the hash of an account that does not exist (a sign-in verifies against it,
# a reset request makes its link from it), so that both cases take as long: the hash of a
# random password nobody kept, with the hasher's parameters (a test checks they still are;
# hashing it at import cost every process and `flask` command a quarter of a second).
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$XE719xi6yaVA0X/aGet3Ew"
    "$YBNMpDTMw9a7UYM0Epdxvyh49Ybrtb8LIh39DCQvrew"
)


class AccountError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(AccountError):
    """Field values that break the rules: ``errors`` maps each field to its message."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class Stale(AccountError):
    status = 409


class Forbidden(AccountError):
    status = 403


class NotFound(AccountError):
    status = 404


class TooManyLookups(AccountError):
    """The clinic asked the register too often in the window: try again later."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds until the clinic may ask again


# --- who is acting -------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """A signed-in user, or a clinic's API token acting for its clinic."""

    user: User | None = None
    token: ApiToken | None = None
    name: str = "system"  # who acts without an account: a command, a visitor

    @property
    def label(self) -> str:
        if self.token is not None:
            return f"API token {self.token.name!r} ({self.token.prefix}...)"
        return self.user.email if self.user else self.name

    @property
    def clinic_id(self) -> int | None:
        if self.token is not None:
            return self.token.clinic_id
        return self.user.clinic_id if self.user else None

    @property
    def is_site_admin(self) -> bool:
        return self.token is None and self.user is not None and self.user.is_site_admin

    @property
    def is_clinic_admin(self) -> bool:
        return self.token is None and self.user is not None and self.user.is_clinic_admin

    def may_edit(self, clinic: Clinic) -> bool:
        return self.is_site_admin or (self.clinic_id is not None and self.clinic_id == clinic.id)

    def may_manage(self, clinic: Clinic) -> bool:
        """Users and tokens: the clinic's admins and site admins, never staff or a token."""
        return self.is_site_admin or (self.is_clinic_admin and self.clinic_id == clinic.id)


SYSTEM = Actor()


def require_edit(actor: Actor, clinic: Clinic) -> None:
    if not actor.may_edit(clinic):
        # Another clinic's data is not there, as far as this actor can tell.
        raise NotFound("There is no such clinic in your account.")
    if standing.is_suspended(clinic) and not actor.is_site_admin:
        raise Forbidden("This clinic is suspended: its listings cannot be changed for now.")


def require_manage(actor: Actor, clinic: Clinic) -> None:
    require_edit(actor, clinic)
    if not actor.may_manage(clinic):
        raise Forbidden("Only the clinic's admins can manage its users and API tokens.")


def audit(
    session: Session,
    actor: Actor,
    action: str,
    *,
    clinic: Clinic | None = None,
    target: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        clinic_id=clinic.id if clinic is not None else None,
        actor_id=actor.user.id if actor.user is not None else None,
        actor=actor.label[:300],
        action=action,
        target=target,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def audit_log(session: Session, clinic: Clinic, limit: int = 200) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.clinic_id == clinic.id)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
    )


# --- users and passwords -----------------------------------------------------------------


def normalise_email(value: Any) -> str:
    try:
        email = clean_email(value)
    except FieldError as exc:
        raise Invalid({"email": exc.reason}) from exc
    if email is None:
        raise Invalid({"email": "email is required"})
    return email.lower()


def check_password(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise Invalid({"password": f"a password must have at least {MIN_PASSWORD} characters"})
    if len(password) > MAX_PASSWORD:
        raise Invalid({"password": f"a password must have at most {MAX_PASSWORD} characters"})
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def create_user(
    session: Session,
    email: Any,
    password: Any,
    role: str,
    clinic: Clinic | None = None,
    *,
    actor: Actor = SYSTEM,
) -> User:
    address = normalise_email(email)
    try:
        role_enum = Role(role)
    except ValueError as exc:
        raise Invalid({"role": f"role must be one of {', '.join(r.value for r in Role)}"}) from exc
    if role_enum.is_clinic_role and clinic is None:
        raise Invalid({"clinic": f"a {role_enum.value} belongs to a clinic: name it"})
    if not role_enum.is_clinic_role and clinic is not None:
        raise Invalid({"clinic": "a site_admin belongs to no clinic"})
    if user_by_email(session, address) is not None:
        raise Invalid({"email": f"{address} already has an account"})
    user = User(
        email=address,
        password_hash=hash_password(password),
        role=role_enum.value,
        clinic=clinic,
        session_generation=1,
    )
    session.add(user)
    _flush_new(session, "email", f"{address} already has an account")
    if role_enum is Role.CLINIC_ADMIN:
        standing.set_claimed(session, clinic, True)  # it keeps its own record from now on
    audit(
        session,
        actor,
        "user.create",
        clinic=clinic,
        target=address,
        after={"email": address, "role": role_enum.value},
    )
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user, when the password is theirs; None otherwise (as slow either way)."""
    user = user_by_email(session, email or "") if isinstance(email, str) else None
    try:
        _hasher.verify(user.password_hash if user else DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_sign_in_at = utcnow()
    return user


def set_password(session: Session, user: User, password: Any, *, actor: Actor) -> None:
    user.password_hash = hash_password(password)
    _end_every_session(session, user)
    audit(session, actor, "user.password", clinic=user.clinic, target=user.email)


# --- sessions: each sign-in is a row; signing out deletes it ------------------------------


def _session_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(session: Session, user: User) -> str:
    """A new session of ``user``: its key goes into the session cookie (``user.get_id()``)."""
    key = secrets.token_urlsafe(24)
    kept = select(UserSession.key_hash).where(UserSession.user_id == user.id)
    newest = kept.order_by(UserSession.created_at.desc(), UserSession.key_hash)
    session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id,
            UserSession.key_hash.not_in(newest.limit(MAX_SESSIONS_PER_USER - 1)),
        )
    )
    session.add(UserSession(key_hash=_session_digest(key), user_id=user.id))
    user.session_key = key
    return key


def session_is_open(session: Session, user: User, key: str) -> bool:
    """Whether ``key`` names a session of ``user`` that nobody has signed out of."""
    if not key or len(key) > 100:
        return False
    row = session.get(UserSession, _session_digest(key))
    return row is not None and row.user_id == user.id


def end_session(session: Session, user: User) -> None:
    """Sign-out: the session the user is signed in with ends here, on the server, so a copy
    of its cookie made before signs nobody in."""
    if user.session_key:
        session.execute(
            delete(UserSession).where(UserSession.key_hash == _session_digest(user.session_key))
        )


def _end_every_session(session: Session, user: User) -> None:
    user.session_generation += 1  # part of every session's id: each one ends
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def sign_out_everywhere(session: Session, user: User) -> None:
    _end_every_session(session, user)
    audit(session, Actor(user=user), "user.sign_out_everywhere", clinic=user.clinic)


def clinic_users(session: Session, clinic: Clinic) -> list[User]:
    return list(
        session.scalars(select(User).where(User.clinic_id == clinic.id).order_by(User.email))
    )


def remove_user(session: Session, actor: Actor, clinic: Clinic, user_id: int) -> None:
    require_manage(actor, clinic)
    user = session.get(User, user_id)
    if user is None or user.clinic_id != clinic.id:
        raise NotFound("There is no such user at this clinic.")
    if actor.user is not None and user.id == actor.user.id:
        raise Invalid({"user": "you cannot remove your own account"})
    audit(
        session,
        actor,
        "user.remove",
        clinic=clinic,
        target=user.email,
        before={"email": user.email, "role": user.role},
    )
    # an invitation still waiting for this address is cancelled with the account
    links.revoke(session, "invite", clinic.id, user.email)
    # and the API tokens the user created: whoever set them up has left the clinic
    for token in session.scalars(
        select(ApiToken).where(ApiToken.created_by_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        _revoke(session, actor, clinic, token, because=f"{user.email} was removed")
    session.delete(user)
    session.flush()
    if count_admins(session, clinic) == 0:
        standing.set_claimed(session, clinic, False)  # it can be claimed again; imports update it


def link_to_join(session: Session, purpose: str, token: str) -> tuple[IssuedLink, Clinic]:
    """The row and clinic of an invitation (``invite``) or claim link that can still create
    an account; ``links.LinkInvalid`` with the reason otherwise."""
    row = links.issued(session, purpose, links.read(purpose, token))
    clinic = session.get(Clinic, row.clinic_id)
    if clinic is None:
        raise links.LinkInvalid("This link is not valid: ask for a new one.")
    if purpose == "claim":
        if clinic.email != row.email:
            raise links.LinkInvalid("This link no longer matches the clinic's address on record.")
        if count_admins(session, clinic) > 0:
            raise links.LinkInvalid("This clinic has already been claimed: ask its admin.")
    elif user_by_email(session, row.email) is not None:
        raise links.LinkInvalid("This invitation has already been used.")
    if standing.is_suspended(clinic):
        raise links.LinkInvalid(f"{clinic.name} is suspended: this link cannot be used.")
    return row, clinic


def join_by_link(session: Session, row: IssuedLink, clinic: Clinic, password: Any) -> User:
    """The account a followed link creates: a claim makes the clinic's first admin, an
    invitation the role it names. The link is used up in the same transaction."""
    claim = row.purpose == "claim"
    role = Role.CLINIC_ADMIN.value if claim else (row.role or Role.CLINIC_STAFF.value)
    user = create_user(session, row.email, password, role, clinic, actor=Actor())
    if claim:
        audit(
            session,
            Actor(user=user),
            "clinic.claim",
            clinic=clinic,
            target=clinic.slug,
            after={"admin": user.email},
        )
    links.mark_used(session, row)
    return user


def cancel_invitation(session: Session, actor: Actor, clinic: Clinic, link_id: str) -> str:
    """Cancels one unused invitation of the clinic; returns the address it was sent to."""
    require_manage(actor, clinic)
    row = session.get(IssuedLink, link_id)
    if row is None or row.purpose != "invite" or row.clinic_id != clinic.id:
        raise NotFound("There is no such invitation at this clinic.")
    if row.used_at is not None or row.revoked_at is not None:
        raise Invalid({"invitation": "this invitation is already used or cancelled"})
    row.revoked_at = utcnow()
    audit(session, actor, "user.invite_cancel", clinic=clinic, target=row.email)
    return row.email


# --- clinics -----------------------------------------------------------------------------


def find_clinic(session: Session, slug: str) -> Clinic:
    clinic = session.scalar(select(Clinic).where(Clinic.slug == (slug or "").strip().lower()))
    if clinic is None:
        raise NotFound("There is no such clinic.")
    return clinic


def profile_of(clinic: Clinic) -> dict[str, Any]:
    return {key: getattr(clinic, key) for key in PROFILE_FIELDS}


def check_version(current: int, based_on: Any, what: str) -> None:
    """An edit must name the version it was based on; an older one is refused."""
    try:
        based = int(based_on)
    except (TypeError, ValueError) as exc:
        raise Invalid(
            {"version": f"the version this edit is based on is required ({what})"}
        ) from exc
    if based != current:
        raise Stale(
            f"The {what} was changed by someone else since you opened it (your copy is "
            f"version {based}, it is now version {current}). Nothing was saved: reload it, "
            "check the changes and make your edit again."
        )


def _flush(session: Session, what: str) -> None:
    """Write now; a row changed by someone else since it was read is a stale edit."""
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        raise Stale(
            f"The {what} was changed by someone else at the same moment. Nothing was saved: "
            "reload it, check the changes and make your edit again."
        ) from exc


def _flush_new(session: Session, field: str, message: str) -> None:
    """Write a new row; one written by someone else at the same moment is a clear refusal."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Invalid({field: message}) from exc


def update_profile(
    session: Session, actor: Actor, clinic: Clinic, changes: dict[str, Any], based_on: Any
) -> dict[str, Any]:
    """Apply ``changes`` (a subset of PROFILE_FIELDS) with the bulk import's field rules."""
    require_edit(actor, clinic)
    check_version(clinic.version, based_on, "clinic's profile")
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        raise Invalid({key: f"{key} cannot be changed here" for key in unknown})
    before = profile_of(clinic)
    record = {**before, **changes, "slug": clinic.slug}
    values, errors = validate_clinic(record)
    if errors:
        raise Invalid({error.field: error.reason for error in errors})
    values.pop("slug")
    changed = {key: value for key, value in values.items() if before[key] != value}
    if not changed:
        return before
    for key, value in changed.items():
        setattr(clinic, key, value)
    _flush(session, "clinic's profile")
    audit(
        session,
        actor,
        "clinic.update",
        clinic=clinic,
        target=clinic.slug,
        before={key: before[key] for key in changed},
        after=changed,
    )
    return profile_of(clinic)


# --- listings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddOutcome:
    listing: Listing | None  # written: public now
    held: HeldListing | None  # waiting for a site admin
    register_name: str


def listing_view(listing: Listing) -> dict[str, Any]:
    return {
        "registration_number": listing.practitioner.registration_number,
        "services": sorted(s.slug for s in listing.services),
        "description": listing.description or "",
    }


def scope_notes(listing: Listing) -> list[str]:
    """What the clinic is told about its listing: each treatment outside (or of unknown)
    scope of practice for the practitioner (``ListingRules.scope_notes``). The listing is
    kept; the note says why a patient's default search for that treatment leaves it out."""
    slugs = [s.slug for s in listing.services]
    return [note for _, note in ListingRules.scope_notes(listing.practitioner, slugs)]


def find_listing(session: Session, clinic: Clinic, number: Any) -> Listing:
    try:
        canonical = numbers.normalise(str(number or ""))
    except numbers.RegistrationNumberError as exc:
        raise NotFound(f"{str(number)[:40]!r} is not a registration number.") from exc
    listing = session.scalar(
        select(Listing)
        .join(Practitioner, Listing.practitioner_id == Practitioner.id)
        .where(Listing.clinic_id == clinic.id, Practitioner.registration_number == canonical)
        .options(selectinload(Listing.services), selectinload(Listing.practitioner))
    )
    if listing is None:
        raise NotFound(f"{canonical} is not listed at this clinic.")
    return listing


def clinic_listings(session: Session, clinic: Clinic) -> list[Listing]:
    return list(
        session.scalars(
            select(Listing)
            .where(Listing.clinic_id == clinic.id)
            .options(selectinload(Listing.services), selectinload(Listing.practitioner))
            .order_by(Listing.id)
        )
    )


def _validated(rules: ListingRules, raw: dict[str, Any]):
    try:
        return rules.validate_listing(1, raw)
    except FieldError as exc:
        raise Invalid({exc.field: exc.reason}) from exc


_TITLES = frozenset({"dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss", "mx"})


def _name_words(text: str) -> list[str]:
    """Lower-case words without accents, punctuation or titles: "Dr Zoë O'Neil" -> zoe o neil."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return [word for word in re.findall(r"[a-z0-9]+", plain) if word not in _TITLES]


def name_match(given: str, practitioner: Practitioner) -> tuple[float, str]:
    """How well the clinic's spelling matches the register's (0-100), and the register's.

    Titles, case, accents and punctuation are ignored. The score is that of the weakest of:
    - the register's surname: a run of typed words (no more than the register's surname has),
      joined without spaces and compared with rapidfuzz's ratio, so "Fictional Smith" and
      "Fictional-Smyth" match FICTIONAL-SMITH but "Smith" or "Fictional-Smith Jones" do not;
    - a forename: at least one other typed word must be one of the register's forenames
      (fuzzily) or their initial(s) ("A", "A.P.", "AP");
    - every other typed word: each must be a forename or initial too, so a word the register
      does not hold scores low and holds the listing for a site admin.
    A name with no forename, or no surname, scores 0.
    """
    register_name = " ".join(
        part for part in (practitioner.full_names, practitioner.surname) if part
    )
    words = _name_words(given)
    forenames = _name_words(practitioner.full_names or "")
    surname_words = _name_words(practitioner.surname or "")
    surname = "".join(surname_words)
    initials = "".join(name[0] for name in forenames)
    if not words or not forenames or not surname:
        return 0.0, register_name

    def as_forename(word: str) -> float:
        if len(word) <= len(initials) and word in initials:
            return 100.0  # "a", or "ap" for Anna Placeholder
        return max(fuzz.ratio(word, name) for name in forenames)

    best = 0.0
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + len(surname_words)) + 1):
            rest = words[:start] + words[end:]
            if not rest:
                continue
            # the weakest typed word decides; ``rest`` holds the forename(s) required
            weakest = min(as_forename(word) for word in rest)
            best = max(best, min(fuzz.ratio("".join(words[start:end]), surname), weakest))
    return float(best), register_name


def add_listing(
    session: Session,
    actor: Actor,
    clinic: Clinic,
    *,
    registration_number: Any,
    name: Any,
    services: Any,
    description: Any = "",
) -> AddOutcome:
    """Add a practitioner by number: the register is asked now; a number it does not know
    is refused; a name that does not match the register's is held for a site admin."""
    require_edit(actor, clinic)
    rules = ListingRules(session)
    item = _validated(
        rules,
        {
            "registration_number": registration_number,
            "services": services,
            "description": description,
        },
    )
    try:
        given = clean_text(name, "name", 200)
    except FieldError as exc:
        raise Invalid({"name": exc.reason}) from exc
    if not given:
        raise Invalid({"name": "the practitioner's name is required, as the register spells it"})
    number = item.registration_number
    already = session.scalar(
        select(Listing.id)
        .join(Practitioner, Listing.practitioner_id == Practitioner.id)
        .where(Listing.clinic_id == clinic.id, Practitioner.registration_number == number)
    )
    if already is not None:
        raise Invalid({"registration_number": f"{number} is already listed at this clinic"})
    waiting = session.scalar(
        select(HeldListing.id).where(
            HeldListing.clinic_id == clinic.id,
            HeldListing.registration_number == number,
            HeldListing.state == "held",
        )
    )
    if waiting is not None:
        raise Invalid(
            {"registration_number": f"{number} is already waiting for a site admin's review"}
        )

    _count_lookup(clinic)
    result, practitioner = ask_and_record(session, number)
    if result.outcome is Outcome.NOT_FOUND or practitioner is None:
        raise Invalid(
            {
                "registration_number": f"The HPCSA register does not know {number}: check the "
                "number (a clinic can only list registrations the register holds)"
            }
        )
    score, register_name = name_match(given, practitioner)
    threshold = float(current_app.config.get("LISTING_NAME_MATCH", 85))
    if score < threshold:
        held = HeldListing(
            clinic_id=clinic.id,
            registration_number=number,
            name_given=given,
            services=item.service_slugs,
            description=item.description,
            register_name=register_name or "(no name on the register)",
            register_record=_register_record(practitioner),
            score=score,
            state="held",
            requested_by=actor.label[:300],
        )
        session.add(held)
        session.flush()
        audit(
            session,
            actor,
            "listing.held",
            clinic=clinic,
            target=number,
            after={"name_given": given, "register_name": register_name, "score": score},
        )
        return AddOutcome(None, held, register_name)
    listing, _ = rules.write_listing(clinic, practitioner, item, None)
    _flush_new(session, "registration_number", f"{number} is already listed at this clinic")
    audit(session, actor, "listing.add", clinic=clinic, target=number, after=listing_view(listing))
    return AddOutcome(listing, None, register_name)


def _count_lookup(clinic: Clinic) -> None:
    """One register look-up for the clinic, within CLINIC_LOOKUP_LIMIT (on top of the
    shared register budget, so that one clinic cannot spend everyone's); TooManyLookups
    when the clinic has used its allowance for now."""
    limit = parse(current_app.config["CLINIC_LOOKUP_LIMIT"])
    limiter = ratelimits.counts()
    key = ("clinic-lookup", str(clinic.id))
    if not limiter.hit(limit, *key):
        reset_at = limiter.get_window_stats(limit, *key).reset_time
        raise TooManyLookups(
            f"This clinic has asked the HPCSA register about {limit.amount} registration "
            f"numbers in the last {_window(limit)}, which is as many as it may: nothing was "
            "saved. Try again later.",
            retry_after=max(1, math.ceil(reset_at - time.time())),
        )


def _window(limit) -> str:
    """ "5 per 1 hour" -> "hour", "10 per 15 minutes" -> "15 minutes"."""
    unit = limit.GRANULARITY.name
    return unit if limit.multiples == 1 else f"{limit.multiples} {unit}s"


def _register_record(practitioner: Practitioner) -> dict[str, Any]:
    return {
        "registration_number": practitioner.registration_number,
        "title": practitioner.title,
        "full_names": practitioner.full_names,
        "surname": practitioner.surname,
        "city": practitioner.city,
        "category": practitioner.category,
        "status": practitioner.status,
        "raw_status": practitioner.raw_status,
    }


def update_listing(
    session: Session,
    actor: Actor,
    clinic: Clinic,
    number: Any,
    changes: dict[str, Any],
    based_on: Any,
) -> Listing:
    """Change a listing's services and description (its number is what it is)."""
    require_edit(actor, clinic)
    listing = find_listing(session, clinic, number)
    check_version(listing.version, based_on, "listing")
    unknown = sorted(set(changes) - {"services", "description"})
    if unknown:
        raise Invalid({key: f"{key} cannot be changed here" for key in unknown})
    before = listing_view(listing)
    rules = ListingRules(session)
    raw = {**before, **changes}
    item = _validated(rules, raw)
    _, change = rules.write_listing(clinic, listing.practitioner, item, listing)
    if change == "updated":
        _flush(session, "listing")
        audit(
            session,
            actor,
            "listing.update",
            clinic=clinic,
            target=before["registration_number"],
            before=before,
            after=listing_view(listing),
        )
    return listing


def remove_listing(
    session: Session, actor: Actor, clinic: Clinic, number: Any, based_on: Any
) -> None:
    require_edit(actor, clinic)
    listing = find_listing(session, clinic, number)
    check_version(listing.version, based_on, "listing")
    before = listing_view(listing)
    clinic.listings.remove(listing)
    session.delete(listing)
    _flush(session, "listing")
    audit(
        session,
        actor,
        "listing.remove",
        clinic=clinic,
        target=before["registration_number"],
        before=before,
    )


def held_listings(session: Session, clinic: Clinic | None = None) -> list[HeldListing]:
    query = select(HeldListing).where(HeldListing.state == "held").order_by(HeldListing.created_at)
    if clinic is not None:
        query = query.where(HeldListing.clinic_id == clinic.id)
    return list(session.scalars(query.options(selectinload(HeldListing.clinic))))


def decide_held(session: Session, actor: Actor, held_id: int, approve: bool) -> HeldListing:
    """A site admin approves a held listing (written through the listing rules) or rejects it."""
    if not actor.is_site_admin:
        raise Forbidden("Only site admins review held listings.")
    held = session.get(HeldListing, held_id)
    if held is None or held.state != "held":
        raise NotFound("That listing is not waiting for review (someone may have decided it).")
    clinic = held.clinic
    if approve and standing.is_suspended(clinic):
        raise Invalid(
            {
                "listing": f"{clinic.name} is suspended: its listings stay out of the "
                "directory, so this listing cannot be approved now; decide it after the "
                "clinic is restored"
            }
        )
    if approve:
        practitioner = session.scalar(
            select(Practitioner).where(Practitioner.registration_number == held.registration_number)
        )
        existing = (
            session.scalar(
                select(Listing).where(
                    Listing.clinic_id == clinic.id, Listing.practitioner_id == practitioner.id
                )
            )
            if practitioner is not None
            else None
        )
        if practitioner is None or existing is not None:
            raise Invalid(
                {
                    "listing": "the practitioner is gone from the register table or "
                    "already listed at this clinic"
                }
            )
        rules = ListingRules(session)
        item = _validated(
            rules,
            {
                "registration_number": held.registration_number,
                "services": held.services,
                "description": held.description,
            },
        )
        listing, _ = rules.write_listing(clinic, practitioner, item, None)
        session.flush()
        audit(
            session,
            actor,
            "listing.approve",
            clinic=clinic,
            target=held.registration_number,
            after=listing_view(listing),
        )
    else:
        audit(
            session,
            actor,
            "listing.reject",
            clinic=clinic,
            target=held.registration_number,
            before={"name_given": held.name_given, "register_name": held.register_name},
        )
    held.state = "approved" if approve else "rejected"
    held.decided_by = actor.label[:300]
    held.decided_at = utcnow()
    return held


# --- suspension --------------------------------------------------------------------------


def suspension_of(clinic: Clinic) -> ClinicSuspension | None:
    """The suspended clinic's set-aside listings and reason; None when it is not suspended."""
    from directory.extensions import db

    if not standing.is_suspended(clinic):
        return None
    return db.session.get(ClinicSuspension, clinic.id)


def suspend_clinic(session: Session, actor: Actor, clinic: Clinic, reason: str = "") -> None:
    """Take the clinic's listings out of the directory and search now; keep them aside."""
    if not actor.is_site_admin:
        raise Forbidden("Only site admins suspend clinics.")
    if standing.is_suspended(clinic):
        raise Invalid({"clinic": "this clinic is already suspended"})
    listings = clinic_listings(session, clinic)
    kept = [listing_view(listing) for listing in listings]
    for listing in listings:
        clinic.listings.remove(listing)
        session.delete(listing)
    session.add(
        ClinicSuspension(
            clinic_id=clinic.id,
            reason=(reason or "")[:2000],
            suspended_by=actor.label[:300],
            listings=kept,
        )
    )
    standing.set_suspended(session, clinic, True)
    session.flush()
    audit(
        session,
        actor,
        "clinic.suspend",
        clinic=clinic,
        target=clinic.slug,
        after={"reason": reason, "listings_set_aside": len(kept)},
    )


def restore_clinic(session: Session, actor: Actor, clinic: Clinic) -> int:
    """Put a suspended clinic's listings back, through the listing rules."""
    if not actor.is_site_admin:
        raise Forbidden("Only site admins restore clinics.")
    suspension = suspension_of(clinic)
    if suspension is None:
        raise Invalid({"clinic": "this clinic is not suspended"})
    rules = ListingRules(session)
    restored = 0
    for raw in suspension.listings:
        practitioner = session.scalar(
            select(Practitioner).where(
                Practitioner.registration_number == raw["registration_number"]
            )
        )
        if practitioner is None:
            continue
        try:
            item = rules.validate_listing(1, raw)
        except FieldError:
            continue
        # a listing may be back already (written by an import before the import knew of
        # suspensions): the set-aside listing updates it rather than adding a second one
        existing = session.scalar(
            select(Listing).where(
                Listing.clinic_id == clinic.id, Listing.practitioner_id == practitioner.id
            )
        )
        rules.write_listing(clinic, practitioner, item, existing)
        restored += 1
    session.delete(suspension)
    standing.set_suspended(session, clinic, False)
    session.flush()
    audit(
        session,
        actor,
        "clinic.restore",
        clinic=clinic,
        target=clinic.slug,
        after={"listings_restored": restored},
    )
    return restored


suspended_clinic_ids = standing.suspended_clinic_ids


# --- API tokens --------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, actor: Actor, clinic: Clinic, name: Any) -> tuple[str, ApiToken]:
    """A new token for ``clinic``: the token itself is returned once and never stored."""
    require_manage(actor, clinic)
    try:
        label = clean_text(name, "name", 100)
    except FieldError as exc:
        raise Invalid({"name": exc.reason}) from exc
    if not label:
        raise Invalid({"name": "give the token a name (e.g. the system that will use it)"})
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        clinic_id=clinic.id,
        name=label,
        token_hash=token_digest(plain),
        prefix=plain[:10],
        created_by_id=actor.user.id if actor.user else None,
    )
    session.add(token)
    session.flush()
    audit(
        session,
        actor,
        "token.create",
        clinic=clinic,
        target=label,
        after={"name": label, "prefix": token.prefix},
    )
    return plain, token


def clinic_tokens(session: Session, clinic: Clinic) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.clinic_id == clinic.id).order_by(ApiToken.created_at)
        )
    )


def revoke_token(session: Session, actor: Actor, clinic: Clinic, token_id: int) -> None:
    require_manage(actor, clinic)
    token = session.get(ApiToken, token_id)
    if token is None or token.clinic_id != clinic.id:
        raise NotFound("There is no such token at this clinic.")
    if token.revoked_at is None:
        _revoke(session, actor, clinic, token)


def _revoke(
    session: Session, actor: Actor, clinic: Clinic, token: ApiToken, because: str | None = None
) -> None:
    token.revoked_at = utcnow()
    after = {"reason": because} if because else None
    audit(session, actor, "token.revoke", clinic=clinic, target=token.name, after=after)


def token_actor(session: Session, presented: str) -> Actor | None:
    """The actor for a presented token; None when unknown or revoked."""
    if not presented or len(presented) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(presented)))
    if token is None or token.revoked_at is not None:
        return None
    token.last_used_at = utcnow()
    return Actor(token=token)


def count_admins(session: Session, clinic: Clinic) -> int:
    return (
        session.scalar(
            select(func.count(User.id)).where(
                User.clinic_id == clinic.id, User.role == Role.CLINIC_ADMIN.value
            )
        )
        or 0
    )
