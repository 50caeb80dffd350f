"""Notifications of status changes (an outbox sent after commit) and the public change feed.

- ``queue.py``: every new ``StatusEvent`` gets a feed entry and its outbox rows (webhook,
  one email per listing clinic) in the same transaction as the change.
- ``delivery.py``: ``deliver_pending()`` claims due rows with a lease and sends them.
- ``transports.py``: the signed webhook POST, and mail as files or through SMTP.
- ``feed.py``: the change feed's cursor pages and the Atom feed at ``/changes.atom``.

See docs/notifications.md.
"""

from __future__ import annotations

import logging

from flask import Flask

from directory.notifications.delivery import DeliveryRecord, DeliverySummary, deliver_pending
from directory.notifications.models import (
    ChangeFeedEntry,
    Channel,
    DeliveryState,
    NotificationDelivery,
    NotificationOutbox,
)
from directory.notifications.queue import EXTENSION, email_recipients, register_engine
from directory.notifications.settings import NotifySettings

__all__ = [
    "ChangeFeedEntry",
    "Channel",
    "DeliveryRecord",
    "DeliveryState",
    "DeliverySummary",
    "NotificationDelivery",
    "NotificationOutbox",
    "NotifySettings",
    "deliver_pending",
    "email_recipients",
    "init_app",
]

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Read the settings (a bad one stops start-up, named), hook the app's engines to the
    queueing listener, and add the Atom feed and ``flask notifications``. Call after
    ``db.init_app(app)``."""
    from directory.extensions import db
    from directory.notifications.cli import notifications_cli
    from directory.notifications.feed import feed
    from directory.notifications.queue import on_registrations_changed
    from directory.registry.signals import registrations_changed

    try:
        settings = NotifySettings.from_config(app.config, app.instance_path)
    except ValueError as exc:
        raise RuntimeError(f"invalid setting: {exc}") from exc
    app.extensions[EXTENSION] = settings
    with app.app_context():
        for engine in db.engines.values():
            register_engine(engine, app)
    if not settings.public_base_url and (settings.webhook_url or settings.mail_transport == "smtp"):
        log.warning(
            "PUBLIC_BASE_URL is not set: links in notifications point at %s",
            "http://127.0.0.1:8000",
        )
    registrations_changed.connect(on_registrations_changed)
    app.register_blueprint(feed)
    app.cli.add_command(notifications_cli)
