"""Reading the results page's query string into a ``SearchQuery``.

Whatever a person (or a crawler, or a hand-edited link) puts in the query string, the page
answers: values that can be clamped are clamped and the page says so; a filter that cannot
mean anything (an unknown status) is a plain message with status 400. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from directory.listings.places import parse_coordinates
from directory.registry.statuses import Status
from directory.search.backend import MAX_PER_PAGE, MAX_RADIUS_KM, SORT_ORDERS, SearchQuery

DEFAULT_PER_PAGE = 20
# Nobody pages this far by hand; a bound keeps a hand-typed page=10**12 from asking the
# engine for a top-N of trillions.
MAX_PAGE = 1000
# Long enough for any real search; the rest is cut off (and the page says so).
MAX_TEXT = 1000
MAX_FILTER = 200
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y"})

SORT_LABELS: dict[str, str] = {
    "relevance": "Best match",
    "name": "Name (A to Z)",
    "verified": "Most recently confirmed",
    "distance": "Nearest first",
}
# The distance limits the results page offers (any whole number of km up to MAX_RADIUS_KM
# works in a link).
RADIUS_CHOICES: tuple[int, ...] = (5, 10, 25, 50)
STATUS_LABELS: dict[str, str] = {
    Status.ACTIVE: "Active",
    Status.SUSPENDED: "Suspended",
    Status.ERASED: "Erased",
    Status.INACTIVE: "Inactive",
    Status.DECEASED: "Deceased",
    Status.NOT_FOUND: "Not on the register",
    Status.UNKNOWN: "Unknown",
}
# The query-string keys the results page understands, in the order links write them.
KEYS: tuple[str, ...] = (
    "q",
    "where",
    "service",
    "city",
    "province",
    "clinic",
    "status",
    "all",
    "near",
    "radius",
    "sort",
    "per_page",
    "page",
)


@dataclass
class ParsedSearch:
    query: SearchQuery
    # The query string as the page understood it (defaults left out): links start from this.
    args: dict[str, str]
    # Clamps and corrections the page should tell the reader about.
    notices: list[str] = field(default_factory=list)
    # A value that cannot be honoured: the page shows it with status 400 and runs no search.
    error: str | None = None


def _clean(value: str | None, limit: int) -> str:
    if value is None:
        return ""
    return value.strip()[:limit]


def _int_arg(
    raw: str | None,
    *,
    what: str,
    describe: Callable[[int], str],
    too_big: str,
    default: int,
    low: int,
    high: int,
    notices: list[str],
) -> int:
    """A whole number from the query string, clamped to [low, high], with a notice when
    the value was not used as given."""
    if raw is None or not raw.strip():
        return default
    try:
        number = int(raw.strip())
    except ValueError:
        notices.append(f"“{raw[:40]}” is not {what}; showing {describe(default)}.")
        return default
    if number < low:
        notices.append(f"{number} is too small for {what}; showing {describe(low)}.")
        return low
    if number > high:
        notices.append(f"{too_big}; showing {describe(high)}.")
        return high
    return number


def parse_search_args(args: Mapping[str, str]) -> ParsedSearch:
    """Turn the query string into a SearchQuery, with notices for every value it changed."""
    notices: list[str] = []
    error: str | None = None

    raw_q = args.get("q") or ""
    text = _clean(raw_q, MAX_TEXT)
    if len(raw_q.strip()) > MAX_TEXT:
        notices.append(f"Your search was shortened to its first {MAX_TEXT} characters.")
    place = _clean(args.get("where"), MAX_TEXT)
    service = _clean(args.get("service"), MAX_FILTER) or None
    city = _clean(args.get("city"), MAX_FILTER) or None
    province = _clean(args.get("province"), MAX_FILTER) or None
    clinic = _clean(args.get("clinic"), MAX_FILTER) or None

    status = _clean(args.get("status"), MAX_FILTER).lower().replace(" ", "_") or None
    if status is not None and status not in STATUS_LABELS:
        choices = ", ".join(STATUS_LABELS)
        error = f"There is no status “{args.get('status', '')[:40]}”. Choose one of: {choices}."
        status = None

    near = None
    raw_near = _clean(args.get("near"), MAX_FILTER)
    if raw_near:
        try:
            near = parse_coordinates(raw_near)
        except ValueError as exc:
            notices.append(f"Your location was not used: {exc}.")
    radius = _int_arg(
        args.get("radius"),
        what="a distance in kilometres",
        describe=lambda n: f"within {n} km" if n else "any distance",
        too_big=f"The largest distance limit is {MAX_RADIUS_KM} km",
        default=0,
        low=0,  # 0: any distance
        high=MAX_RADIUS_KM,
        notices=notices,
    )

    show_everyone = (args.get("all") or "").strip().lower() in TRUE_WORDS
    # Asking for a status other than "active" only makes sense when everyone is shown.
    include_unverified = show_everyone or (status is not None and status != Status.ACTIVE)

    # Your location, without a sort asked for: nearest first (why else share it?).
    sort = (args.get("sort") or "").strip().lower() or ("distance" if near else "relevance")
    if sort not in SORT_ORDERS:
        notices.append(
            f"“{args.get('sort', '')[:40]}” is not a way to sort; sorted by best match instead."
        )
        sort = "relevance"

    per_page = _int_arg(
        args.get("per_page"),
        what="a number of results per page",
        describe=lambda n: f"{n} results per page",
        too_big=f"A page shows at most {MAX_PER_PAGE} results",
        default=DEFAULT_PER_PAGE,
        low=1,
        high=MAX_PER_PAGE,
        notices=notices,
    )
    page = _int_arg(
        args.get("page"),
        what="a page number",
        describe=lambda n: f"page {n}",
        too_big=f"Results can be paged through up to page {MAX_PAGE}",
        default=1,
        low=1,
        high=MAX_PAGE,
        notices=notices,
    )

    query = SearchQuery(
        text=text,
        place=place,
        service=service,
        city=city,
        province=province,
        clinic=clinic,
        status=status,
        include_unverified=include_unverified,
        near=near,
        radius_km=float(radius) if radius else None,
        sort=sort,  # type: ignore[arg-type]  (checked against SORT_ORDERS above)
        page=page,
        per_page=per_page,
    )
    canonical = {
        "q": text,
        "where": place,
        "service": service or "",
        "city": city or "",
        "province": province or "",
        "clinic": clinic or "",
        "status": status or "",
        "all": "1" if show_everyone else "",
        "near": f"{near[0]:.4f},{near[1]:.4f}" if near else "",
        "radius": str(radius) if radius else "",
        "sort": "" if sort == ("distance" if near else "relevance") else sort,
        "per_page": "" if per_page == DEFAULT_PER_PAGE else str(per_page),
        "page": "" if page == 1 else str(page),
    }
    return ParsedSearch(
        query=query,
        args={k: v for k, v in canonical.items() if v},
        notices=notices,
        error=error,
    )


def with_changes(args: Mapping[str, str], **changes: str | int | None) -> dict[str, str]:
    """The query string with some keys changed (``None`` or "" removes one).

    Any change other than the page itself goes back to page 1: page 3 of one search is
    not page 3 of another.
    """
    merged = dict(args)
    if "page" not in changes:
        merged.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    if merged.get("page") == "1":
        merged.pop("page")
    return {k: merged[k] for k in KEYS if k in merged}
