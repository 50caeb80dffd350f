"""Page views. Each page reads what the system believes and asks ``verification`` for the badge.

Search goes through the search-backend interface only; every badge, on every page, comes
from ``verdict`` over the practitioner row in the database (never from the index's copy),
so a page can never show "verified" for someone the register no longer vouches for. What a
view of search results keeps (and which practitioners a search names) is decided once, in
``directory.search.results.shown_results``, for the pages and the API alike.
"""

from __future__ import annotations

from dataclasses import replace

from flask import (
    Blueprint,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from directory import search as search_package
from directory.extensions import db
from directory.listings.models import Clinic, Listing, Service, listing_services
from directory.listings.queries import listings_of_practitioner
from directory.listings.scope import ScopeAnswer, scope_of
from directory.registry import numbers
from directory.registry.professions import profession_of
from directory.registry.profile import find_practitioner, read_profile, register_record_url
from directory.registry.verification import verdict
from directory.search.backend import NoOrigin, QueryError, SearchQuery, SearchResults
from directory.search.results import ShownResults, searched_services, shown_results
from directory.web import presenters
from directory.web.params import (
    KEYS,
    RADIUS_CHOICES,
    SORT_LABELS,
    STATUS_LABELS,
    ParsedSearch,
    parse_search_args,
    with_changes,
)

web = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)

POPULAR_SERVICES = 8
HISTORY_SHOWN = 20
SERVICE_PAGE_PEOPLE = 10
# Longer than any way of writing a number (spaces, dashes and all): refused before reading.
MAX_NUMBER_TYPED = 100


for _name in ("long_date", "long_datetime", "iso", "marked", "contact", "km"):
    web.add_app_template_filter(getattr(presenters, _name), _name)


@web.app_template_global("scope_for")
def scope_for(service_slug: str, practitioner) -> ScopeAnswer:
    """The scope of practice of one (treatment, practitioner) pair, for every page."""
    return scope_of(service_slug, practitioner.registration_number, practitioner.category)


@web.app_template_global("profession_of")
def profession_in_words(practitioner) -> str:
    """ "Medical doctor", "Physiotherapist": from the register's prefix and category."""
    return profession_of(practitioner.registration_number, practitioner.category)


@web.context_processor
def _page_helpers() -> dict:
    return {
        "status_labels": STATUS_LABELS,
        "sort_labels": SORT_LABELS,
        "radius_choices": RADIUS_CHOICES,
    }


def search_backend():
    """The configured engine, looked up at call time (tests may swap it)."""
    return search_package.get_search_backend()


def run_search(query: SearchQuery) -> ShownResults:
    """The engine's answer to ``query`` as the page shows it: cards judged by the database
    now, and the practitioners the search names (``results.shown_results``, shared with the
    API). Raises QueryError for a query that cannot be run."""
    backend = search_backend()
    return shown_results(backend, query, backend.search(query))


def card_contacts(*entry_lists) -> dict[str, presenters.Contact]:
    """How to reach the first clinic of each result card, by clinic slug (one query): the
    index's copy of a clinic carries no phone or coordinates, and the database is current."""
    slugs = {
        entry.hit.clinics[0].slug
        for entries in entry_lists
        for entry in entries
        if entry.hit and entry.hit.clinics
    }
    if not slugs:
        return {}
    rows = db.session.execute(
        select(Clinic.slug, Clinic.phone, Clinic.email, Clinic.latitude, Clinic.longitude).where(
            Clinic.slug.in_(slugs)
        )
    ).all()
    return {row.slug: presenters.contact(row) for row in rows}


@web.get("/")
def home():
    uses = func.count(listing_services.c.listing_id)
    popular = db.session.execute(
        select(Service, uses.label("uses"))
        .outerjoin(listing_services, listing_services.c.service_id == Service.id)
        .group_by(Service.id)
        .order_by(uses.desc(), Service.name)
        .limit(POPULAR_SERVICES)
    ).all()
    return render_template("home.html", popular=popular)


def _filter_labels(parsed: ParsedSearch) -> list[dict]:
    """The active filters as chips, each with the link that removes it."""
    query = parsed.query
    chips: list[dict] = []
    if query.service:
        name = db.session.scalar(select(Service.name).where(Service.slug == query.service))
        chips.append({"label": "Treatment", "value": name or query.service, "key": "service"})
    if query.city:
        chips.append({"label": "City", "value": query.city, "key": "city"})
    if query.province:
        chips.append({"label": "Province", "value": query.province, "key": "province"})
    if query.clinic:
        name = db.session.scalar(select(Clinic.name).where(Clinic.slug == query.clinic))
        chips.append({"label": "Clinic", "value": name or query.clinic, "key": "clinic"})
    if query.status:
        chips.append({"label": "Status", "value": STATUS_LABELS[query.status], "key": "status"})
    if query.radius_km:
        chips.append(
            {"label": "Distance", "value": f"within {query.radius_km:g} km", "key": "radius"}
        )
    if query.near:
        chips.append({"label": "Near", "value": "your location", "key": "near"})
    for chip in chips:
        chip["remove"] = url_for("web.search", **with_changes(parsed.args, **{chip["key"]: None}))
    return chips


UNDERSTOOD_LABELS = {
    "service": "treatment",
    "city": "city",
    "province": "province",
    "postcode": "postal code",
    "place_corrected": "place (spelling corrected)",
    "radius": "within",
    "registration_number": "registration number",
    "clinic": "clinic",
}


def _understood(results: SearchResults) -> tuple[list[tuple[str, str]], list[str]]:
    """What the engine recognised in the free text, as (label, value) pairs such as
    ("treatment", "Mesotherapy"), and any remarks (e.g. a shortened query) as notices."""
    pairs: list[tuple[str, str]] = []
    remarks: list[str] = []
    for key, value in results.understood.items():
        if not value:
            continue
        if key == "truncated":
            remarks.append(f"Your search was long: {value}.")
            continue
        if key == "service":
            slugs = [slug for slug in value.split(",") if slug]
            names = dict(
                db.session.execute(
                    select(Service.slug, Service.name).where(Service.slug.in_(slugs))
                ).all()
            )
            value = " and ".join(names.get(slug, slug) for slug in slugs)
        elif key in ("city", "province"):
            value = ", ".join(part for part in value.split(",") if part)
        pairs.append((UNDERSTOOD_LABELS.get(key, key.replace("_", " ")), value))
    return pairs, remarks


def _results_title(parsed: ParsedSearch, results: SearchResults | None) -> str:
    what = parsed.query.text or ""
    where = parsed.query.place or parsed.query.city or ""
    subject = (
        " ".join(
            part
            for part in (f"“{what[:60]}”" if what else "", f"in {where[:60]}" if where else "")
            if part
        )
        or "All practitioners"
    )
    if results is None:
        return f"Search: {subject}"
    count = f"{results.total} result" + ("" if results.total == 1 else "s")
    page = f", page {results.page} of {results.pages}" if results.pages > 1 else ""
    return f"{subject}: {count}{page}"


FACETS_SHOWN = 5  # the largest values of a facet shown at once; the rest under "More"
FACETS = (
    # (key in results.facets, query parameter, legend, "any" option, plural)
    ("services", "service", "Treatment", "Any treatment", "treatments"),
    ("cities", "city", "City", "Any city", "cities"),
)


def _facet_groups(parsed: ParsedSearch, results: SearchResults) -> list[dict]:
    """Each facet as the filter form's radio options: the largest ``FACETS_SHOWN`` values,
    the rest as "more", the chosen value always among them (even at a count of 0)."""
    groups = []
    for key, param, legend, any_label, plural in FACETS:
        selected = getattr(parsed.query, param) or ""
        options = [
            {"value": f.value, "label": f.label, "count": f.count, "checked": f.value == selected}
            for f in results.facets.get(key, [])
        ]
        if selected and not any(option["checked"] for option in options):
            options.insert(0, {"value": selected, "label": selected, "count": 0, "checked": True})
        if not options:
            continue
        shown, more = options[:FACETS_SHOWN], options[FACETS_SHOWN:]
        groups.append(
            {
                "key": key,
                "param": param,
                "legend": legend,
                "any": any_label,
                "plural": plural,
                "selected": selected,
                "shown": shown,
                "more": more,
                "more_selected": any(option["checked"] for option in more),
            }
        )
    return groups


def _radius_options(parsed: ParsedSearch) -> list[int | float]:
    chosen = parsed.query.radius_km
    options: list[int | float] = list(RADIUS_CHOICES)
    if chosen is not None and chosen not in options:
        options = sorted([*options, int(chosen) if chosen == int(chosen) else chosen])
    return options


def _pagination(parsed: ParsedSearch, results: SearchResults) -> list[dict]:
    """Page links: first, last, and the two either side of the current page."""
    last = results.pages
    current = results.page
    shown = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    links: list[dict] = []
    previous = 0
    for number in shown:
        if number - previous > 1:
            links.append({"gap": True})
        links.append(
            {
                "number": number,
                "current": number == current,
                "url": url_for("web.search", **with_changes(parsed.args, page=number)),
            }
        )
        previous = number
    return links


@web.get("/search")
def search():
    parsed = parse_search_args(request.args)
    context = {
        "parsed": parsed,
        "args": parsed.args,
        "keys": KEYS,
        "results": None,
        "cards": [],
        "named": [],
        "named_more": False,
        "scope_filtered": False,
        "contacts": {},
        "error": None,
        "understood": [],
        # A new search keeps how the reader chose to see results, not the old filters (nor
        # their location: a new place typed is where they want to measure from).
        "hidden": {
            k: parsed.args[k] for k in ("all", "sort", "radius", "per_page") if k in parsed.args
        },
    }

    def link(**changes) -> str:
        return url_for("web.search", **with_changes(parsed.args, **changes))

    context["link"] = link
    if parsed.error:
        context.update(error=parsed.error, title=_results_title(parsed, None))
        context["chips"] = _filter_labels(parsed)
        return render_template("results.html", **context), 400
    try:
        try:
            shown = run_search(parsed.query)
        except NoOrigin as exc:
            # A new search without a place, from a page sorted nearest first: keep the
            # search, drop what needs a place, and say so.
            parsed.notices.append(f"{exc}; these results are sorted by best match.")
            parsed.query = replace(parsed.query, sort="relevance", radius_km=None)
            parsed.args = with_changes(
                parsed.args, sort=None, radius=None, page=parsed.args.get("page")
            )
            context["args"] = parsed.args
            context["hidden"].pop("sort", None)
            context["hidden"].pop("radius", None)
            shown = run_search(parsed.query)
    except QueryError as exc:
        context.update(error=str(exc), title=_results_title(parsed, None))
        context["chips"] = _filter_labels(parsed)
        return render_template("results.html", **context), 400
    results = shown.results
    context.update(
        results=results,
        cards=shown.entries,
        named=shown.named,
        named_more=shown.named_more,
        contacts=card_contacts(shown.entries, shown.named),
        chips=_filter_labels(parsed),
        facet_groups=_facet_groups(parsed, results),
        radius_options=_radius_options(parsed),
        pagination=_pagination(parsed, results) if results.pages > 1 else [],
        beyond_last=results.total > 0 and parsed.query.page > results.pages,
        title=_results_title(parsed, results),
        scope_filtered=bool(searched_services(results)),
    )
    context["understood"], remarks = _understood(results)
    parsed.notices.extend(remarks)
    return render_template("results.html", **context)


def _too_long_number() -> numbers.RegistrationNumberError:
    return numbers.RegistrationNumberError(
        "That is too long to be a registration number: a number is 2 to 4 letters and "
        "up to 7 digits, e.g. MP0012345."
    )


def _never_checked(
    canonical: str | None, error: numbers.RegistrationNumberError | None, typed: str, status: int
):
    return (
        render_template(
            "check.html",
            typed=typed,
            canonical=canonical,
            error=error,
            record_url=register_record_url(canonical) if canonical else None,
        ),
        status,
    )


@web.get("/practitioners/<number>")
def practitioner(number: str):
    if len(number) > MAX_NUMBER_TYPED:
        return _never_checked(None, _too_long_number(), number[:MAX_NUMBER_TYPED], 404)
    try:
        canonical = numbers.normalise(number)
    except numbers.RegistrationNumberError as exc:
        return _never_checked(None, exc, number, 404)
    if canonical != number:
        return redirect(url_for("web.practitioner", number=canonical), code=301)
    profile = read_profile(canonical, history=HISTORY_SHOWN)
    if profile is None:
        return _never_checked(canonical, None, number, 404)
    found = profile.practitioner
    listings = listings_of_practitioner(found.id)
    return render_template(
        "practitioner.html",
        p=found,
        structured_data=seo.practitioner_page_ld(found, listings),
        verdict=profile.verdict,
        next_steps=[] if profile.verdict.verified else _verified_instead(found, listings),
        register_as_of=profile.register_as_of,
        timeline=[presenters.timeline_entry(c) for c in profile.history],
        checks_total=profile.checks_total,
        listings=listings,
        record_url=profile.record_url,
        register_spelling=profile.register_spelling,
        register_name=profile.register_name,
    )


NEXT_STEP_TREATMENTS = 3


def _verified_instead(found, listings: list[Listing]) -> list[dict]:
    """For a practitioner the register does not vouch for now: searches for verified
    practitioners offering the same treatments near the same place, as links."""
    place = next((listing.clinic.city for listing in listings if listing.clinic.city), None)
    if place is None and found.city:
        place = found.city.title()
    treatments = list({s.slug: s for listing in listings for s in listing.services}.values())
    near = f" near {place}" if place else ""
    where = {"where": place} if place else {}
    steps = [
        {
            "label": f"Verified practitioners for {service.name}{near}",
            "url": url_for("web.search", service=service.slug, **where),
        }
        for service in treatments[:NEXT_STEP_TREATMENTS]
    ]
    if not steps:
        steps.append(
            {"label": f"Verified practitioners{near}", "url": url_for("web.search", **where)}
        )
    return steps


@web.get("/clinics/<slug>")
def clinic(slug: str):
    found = db.session.scalar(select(Clinic).where(Clinic.slug == slug))
    if found is None:
        abort(404, description="There is no clinic at this address in the directory.")
    listings = db.session.scalars(
        select(Listing)
        .where(Listing.clinic_id == found.id)
        .options(selectinload(Listing.practitioner), selectinload(Listing.services))
    ).all()
    people = [(listing, verdict(listing.practitioner)) for listing in listings]
    # Verified practitioners first, then by name: a patient sees first whom they can trust.
    people.sort(key=lambda pair: (not pair[1].verified, pair[0].practitioner.display_name))
    return render_template(
        "clinic.html",
        clinic=found,
        people=people,
        structured_data=seo.clinic_page_ld(found, [listing.practitioner for listing, _ in people]),
        website=presenters.safe_website(found.website),
    )


@web.get("/services")
def services():
    uses = func.count(listing_services.c.listing_id)
    rows = db.session.execute(
        select(Service, uses.label("uses"))
        .outerjoin(listing_services, listing_services.c.service_id == Service.id)
        .group_by(Service.id)
        .order_by(Service.name)
    ).all()
    return render_template("services.html", rows=rows)


@web.get("/services/<slug>")
def service(slug: str):
    found = db.session.scalar(select(Service).where(Service.slug == slug))
    if found is None:
        abort(404, description="There is no treatment at this address in the directory.")
    shown: ShownResults | None = None
    error: str | None = None
    try:
        shown = run_search(SearchQuery(service=found.slug, per_page=SERVICE_PAGE_PEOPLE))
    except QueryError as exc:  # pragma: no cover - a bare service filter is always runnable
        error = str(exc)
    return render_template(
        "service.html",
        service=found,
        results=shown.results if shown else None,
        cards=shown.entries if shown else [],
        contacts=card_contacts(shown.entries) if shown else {},
        error=error,
    )


@web.get("/check")
def check():
    typed = request.args.get("number", "")
    if not typed.strip():
        return render_template("check.html", typed="", canonical=None, error=None)
    if len(typed) > MAX_NUMBER_TYPED:
        return _never_checked(None, _too_long_number(), typed[:MAX_NUMBER_TYPED], 400)
    try:
        canonical = numbers.normalise(typed)
    except numbers.RegistrationNumberError as exc:
        return _never_checked(None, exc, typed, 400)
    if find_practitioner(canonical) is not None:
        return redirect(url_for("web.practitioner", number=canonical), code=303)
    return _never_checked(canonical, None, typed, 404)


# Registered on ``web`` by importing them: more routes (reports, live checks), the error
# pages, the assets and page caching, robots.txt and the sitemaps.
from directory.web import actions, delivery, errors, seo  # noqa: E402,F401
