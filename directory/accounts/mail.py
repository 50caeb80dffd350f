"""The emails accounts send (claim links, password resets, invitations, status changes to a
clinic's admins are sent by ``directory.notifications``), through the one mail transport."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from flask import current_app

from directory.notifications.queue import EXTENSION
from directory.notifications.transports import SendResult, send_email_now


def send(to: str, subject: str, body: str) -> SendResult:
    settings = current_app.extensions[EXTENSION]
    message = EmailMessage(policy=SMTP_POLICY)
    username, _, domain = to.rpartition("@")
    message["To"] = Address(username=username, domain=domain)
    message["Subject"] = subject
    message.set_content(body + "\n")
    return send_email_now(settings, message)
