from directory.extensions import db
from directory.registry.checks import new_practitioner, record_check
from directory.registry.models import Practitioner
from directory.registry.verification import verdict
from importers.sources.hpcsa import HpcsaClient


def test_lookup_then_page_shows_verified(app, client, policy):
    with app.app_context():
        with HpcsaClient.from_config(app.config) as source:
            result = source.lookup("MP0000101")
        p = new_practitioner("MP0000101")
        effect = record_check(db.session, p, result, policy)
        db.session.commit()
        assert effect.effect == "created"
        stored = db.session.scalar(db.select(Practitioner))
        assert stored.status == "active"
        assert verdict(stored).verified
    page = client.get("/practitioners/mp 101")
    assert page.status_code == 301
    page = client.get("/practitioners/MP0000101")
    assert b"Registered with the HPCSA: active" in page.data
