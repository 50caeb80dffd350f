"""Being found and shared: canonical addresses, schema.org JSON-LD, /sitemap.xml and
/robots.txt (the meta description and Open Graph tags are in ``templates/base.html``, each page
filling its ``description`` block).

Every absolute address is ``url_for(..., _external=True)``: with PUBLIC_BASE_URL set every
request is seen with that host, otherwise only TRUSTED_HOSTS (loopback by default) are
answered (``security.py``), so no Host header a client sends can put another site's name in
a canonical link, a sitemap or JSON-LD.

JSON-LD says only what the pages say: the register's name and number (as a schema.org
``identifier``), the clinics' own details; nothing about the status (the badge says that, on
the page). A practitioner is a ``Physician`` only while the register lists them on the
medical practitioners' register (prefix ``MP``; not erased, deceased or not found); anyone
else is a ``Person`` whose occupation is the register they are on (a physiotherapist is not a
physician), and a number the register does not know gets no JSON-LD at all. It is written
with Jinja's ``tojson`` (``<``, ``>``, ``&`` and ``'`` escaped), so no text a clinic typed can
close the ``<script type="application/ld+json">`` element; that element is data, not script,
and the Content-Security-Policy does not apply to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from math import ceil
from xml.sax.saxutils import escape

from flask import Response, abort, current_app, request, url_for
from sqlalchemy import func, null, select

from directory.extensions import db
from directory.listings.models import Clinic, Service
from directory.registry import numbers
from directory.registry.models import Practitioner
from directory.registry.statuses import Status
from directory.util.clock import as_utc
from directory.web.views import web

SITE_NAME = "HPCSA practitioner directory"
# Pages whose query string is part of what they are (the others' canonical drops it).
QUERY_PAGES = frozenset({"web.search"})
MAX_CANONICAL = 2000  # characters: longer addresses break in many clients anyway
PHYSICIAN_PREFIXES = frozenset({"MP"})
# Statuses under which the register no longer lists someone as practising their profession.
NOT_LISTED = frozenset({Status.ERASED, Status.DECEASED, Status.NOT_FOUND})
SITEMAP_CACHE = "public, max-age=3600"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def canonical_url() -> str | None:
    """This page's one address (None for an address that matched no page)."""
    if request.url_rule is None or request.endpoint is None:
        return None
    values = dict(request.view_args or {})
    if request.endpoint in QUERY_PAGES:
        for key in sorted(request.args):
            values.setdefault(key, request.args.getlist(key))
    address = url_for(request.endpoint, _external=True, **values)
    # No page worth an address is this long: a huge input is never quoted back (a 100 kB
    # query string would be in the page three times over).
    return address if len(address) <= MAX_CANONICAL else None


web.add_app_template_global(canonical_url, "canonical_url")


# --- schema.org JSON-LD -----------------------------------------------------------------------


def registration_identifier(registration_number: str) -> dict:
    return {
        "@type": "PropertyValue",
        "propertyID": "HPCSA registration number",
        "value": registration_number,
    }


def person_ld(practitioner: Practitioner, *, with_context: bool = False) -> dict:
    """A practitioner as schema.org sees one (see the module's docstring for the type)."""
    data: dict = {}
    if with_context:
        data["@context"] = "https://schema.org"
    physician = practitioner.prefix in PHYSICIAN_PREFIXES and practitioner.status not in NOT_LISTED
    data["@type"] = "Physician" if physician else "Person"
    data["name"] = practitioner.display_name or practitioner.registration_number
    data["identifier"] = registration_identifier(practitioner.registration_number)
    data["url"] = url_for(
        "web.practitioner", number=practitioner.registration_number, _external=True
    )
    register = numbers.register_name(practitioner.prefix)
    if register and not physician:
        data["hasOccupation"] = {"@type": "Occupation", "name": register}
    return data


def clinic_ld(clinic: Clinic, *, with_context: bool = False, people: Iterable = ()) -> dict:
    data: dict = {}
    if with_context:
        data["@context"] = "https://schema.org"
    data["@type"] = "MedicalClinic"
    data["name"] = clinic.name
    data["url"] = url_for("web.clinic", slug=clinic.slug, _external=True)
    address = {
        "@type": "PostalAddress",
        "streetAddress": clinic.street_address,
        "addressLocality": clinic.city,
        "postalCode": clinic.postal_code,
        "addressRegion": clinic.province,
        "addressCountry": "ZA",
    }
    data["address"] = {k: v for k, v in address.items() if v}
    if clinic.latitude is not None and clinic.longitude is not None:
        data["geo"] = {
            "@type": "GeoCoordinates",
            "latitude": clinic.latitude,
            "longitude": clinic.longitude,
        }
    if clinic.phone:
        data["telephone"] = clinic.phone
    if clinic.email:
        data["email"] = clinic.email
    members = [person_ld(p) for p in people]
    if members:
        data["employee"] = members
    return data


def practitioner_page_ld(practitioner: Practitioner, listings: Iterable) -> dict | None:
    if practitioner.status == Status.NOT_FOUND:
        return None  # the register knows no one by this number: nothing to describe
    data = person_ld(practitioner, with_context=True)
    places = [clinic_ld(listing.clinic) for listing in listings]
    if places:
        data["workLocation" if data["@type"] == "Person" else "location"] = places
    return data


def clinic_page_ld(clinic: Clinic, people: Iterable) -> dict:
    return clinic_ld(clinic, with_context=True, people=people)


# --- /robots.txt and /sitemap.xml ------------------------------------------------------------


@web.get("/robots.txt")
def robots():
    lines = [
        "User-agent: *",
        "Disallow: /account/",
        "Disallow: /api/",
        "Disallow: /search",
        "Disallow: /check",
        "Disallow: /*/report",  # the report forms (a wildcard the major crawlers read)
        "Disallow: /report-received",
        "Allow: /",
        f"Sitemap: {url_for('web.sitemap_index', _external=True)}",
        "",
    ]
    response = Response("\n".join(lines), mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


# Per kind of page: the rows (the URL's value, the page's last change), their order, and
# the page they are the address of.
SITEMAP_ROWS = {
    "services": (select(Service.slug, null()).order_by(Service.slug), "web.service", "slug"),
    "clinics": (select(Clinic.slug, Clinic.updated_at).order_by(Clinic.id), "web.clinic", "slug"),
    "practitioners": (
        select(Practitioner.registration_number, Practitioner.last_checked_at).order_by(
            Practitioner.id
        ),
        "web.practitioner",
        "number",
    ),
}
STATIC_PAGES = ("web.home", "web.services", "web.check")


def _per_file() -> int:
    return max(1, min(int(current_app.config["SITEMAP_URLS_PER_FILE"]), 50_000))


def _files(rows) -> int:
    count = db.session.scalar(select(func.count()).select_from(rows.order_by(None).subquery()))
    return ceil((count or 0) / _per_file())


def _counts() -> dict[str, int]:
    """How many sitemap files each kind of page needs."""
    return {"pages": 1, **{kind: _files(rows) for kind, (rows, _, _) in SITEMAP_ROWS.items()}}


def _xml(root: str, body: Iterable[str]) -> Response:
    text = "".join(
        [f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{SITEMAP_NS}">\n', *body]
    )
    response = Response(f"{text}</{root}>\n", mimetype="application/xml")
    response.headers["Cache-Control"] = SITEMAP_CACHE
    return response


@web.get("/sitemap.xml")
def sitemap_index():
    """A sitemap index: one sitemap per kind of page and per SITEMAP_URLS_PER_FILE of them."""
    entries = (
        f"<sitemap><loc>{escape(url_for('web.sitemap', kind=kind, page=page, _external=True))}"
        "</loc></sitemap>\n"
        for kind, pages in _counts().items()
        for page in range(1, pages + 1)
    )
    return _xml("sitemapindex", entries)


def _urls(kind: str, page: int) -> Iterator[tuple[str, datetime | None]]:
    if kind == "pages":
        for endpoint in STATIC_PAGES:
            yield url_for(endpoint, _external=True), None
        return
    rows, endpoint, key = SITEMAP_ROWS[kind]
    size = _per_file()
    for value, modified in db.session.execute(rows.offset((page - 1) * size).limit(size)):
        yield url_for(endpoint, _external=True, **{key: value}), modified


@web.get("/sitemaps/<any(pages, services, clinics, practitioners):kind>-<int:page>.xml")
def sitemap(kind: str, page: int):
    if not 1 <= page <= _counts()[kind]:
        abort(404, description="There is no such sitemap.")

    def entries() -> Iterator[str]:
        for loc, modified in _urls(kind, page):
            day = as_utc(modified).date().isoformat() if modified else None
            lastmod = f"<lastmod>{day}</lastmod>" if day else ""
            yield f"<url><loc>{escape(loc)}</loc>{lastmod}</url>\n"

    return _xml("urlset", list(entries()))
