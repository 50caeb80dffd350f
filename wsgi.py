"""WSGI entry point: ``gunicorn -c config/gunicorn.conf.py wsgi:app``."""

from directory import create_app
from directory.accounts.register import install_register_lookup
from importers.sources import source_for_app

app = create_app()


def ask_register(number: str):
    """A clinic adding a practitioner asks the live register (importers' client) at once."""
    source = source_for_app(app)
    try:
        return source.lookup(number)
    finally:
        source.close()


install_register_lookup(app, ask_register)
