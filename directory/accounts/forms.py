"""The account pages' forms (Flask-WTF: each carries a CSRF token). The fields only carry
text: the rules that judge it live in ``services`` and the listing rules, one home each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)


class LoginForm(FlaskForm):
    email = EmailField("Email")
    password = PasswordField("Password")


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token (and the version it acts on)."""

    version = HiddenField()


class ProfileForm(FlaskForm):
    version = HiddenField()
    name = StringField("Clinic name")
    description = TextAreaField("Description")
    phone = StringField("Phone")
    email = EmailField("Public email")
    website = StringField("Website")
    street_address = StringField("Street address")
    city = StringField("City")
    province = StringField("Province")
    postal_code = StringField("Postal code")
    latitude = StringField("Latitude")
    longitude = StringField("Longitude")
    opening_hours = TextAreaField("Opening hours")


class AddListingForm(FlaskForm):
    registration_number = StringField("HPCSA registration number")
    name = StringField("Name, as the register spells it")
    services = StringField("Treatments (separated by commas)")
    description = TextAreaField("Description")


class EditListingForm(FlaskForm):
    version = HiddenField()
    services = StringField("Treatments (separated by commas)")
    description = TextAreaField("Description")


class TokenForm(FlaskForm):
    name = StringField("Token name")


class InviteForm(FlaskForm):
    email = EmailField("Email")
    role = SelectField("Role", choices=["clinic_staff", "clinic_admin"])


class PasswordForm(FlaskForm):
    password = PasswordField("New password")
    confirm = PasswordField("The same password again")


class ResetRequestForm(FlaskForm):
    email = EmailField("Email")


class SuspendForm(FlaskForm):
    reason = TextAreaField("Reason (kept in the audit log)")


def split_services(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
