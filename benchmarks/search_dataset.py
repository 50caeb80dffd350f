"""Generate the search benchmark's dataset: a fictional 250,000-practitioner register with
25,000 listings across 5,000 clinics, written with SQLAlchemy Core bulk inserts.

Everything is invented and deterministic (seeded): surnames are built from syllables,
registration numbers are in the fictional range MP9000000-MP9249999 (the real register's
medical practitioner numbers are far below it), clinic names end in "(fictional)".
Bulk inserts bypass the ORM, hence the search outbox: run ``flask search reindex`` after.

    .venv/bin/python -m benchmarks.search_dataset --db /tmp/search-bench/directory.sqlite3
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

PRACTITIONERS = 250_000
CLINICS = 5_000
LISTINGS = 25_000
SEED = 20260101
NUMBER_BASE = 9_000_000  # MP9000000...: a range the real register does not use

# Real South African places (places, not people): where the fictional clinics are.
CITIES: list[tuple[str, str, int]] = [
    # city, province, weight (roughly by size)
    ("Johannesburg", "Gauteng", 40), ("Cape Town", "Western Cape", 36),
    ("Durban", "KwaZulu-Natal", 28), ("Pretoria", "Gauteng", 26),
    ("Gqeberha", "Eastern Cape", 10), ("Bloemfontein", "Free State", 8),
    ("East London", "Eastern Cape", 6), ("Polokwane", "Limpopo", 5),
    ("Mbombela", "Mpumalanga", 5), ("Kimberley", "Northern Cape", 4),
    ("Stellenbosch", "Western Cape", 5), ("George", "Western Cape", 4),
    ("Pietermaritzburg", "KwaZulu-Natal", 6), ("Rustenburg", "North West", 4),
    ("Sandton", "Gauteng", 12), ("Centurion", "Gauteng", 8), ("Randburg", "Gauteng", 6),
    ("Roodepoort", "Gauteng", 4), ("Benoni", "Gauteng", 3), ("Boksburg", "Gauteng", 3),
    ("Germiston", "Gauteng", 3), ("Midrand", "Gauteng", 4), ("Soweto", "Gauteng", 4),
    ("Krugersdorp", "Gauteng", 2), ("Vereeniging", "Gauteng", 2), ("Umhlanga", "KwaZulu-Natal", 6),
    ("Ballito", "KwaZulu-Natal", 3), ("Richards Bay", "KwaZulu-Natal", 2),
    ("Newcastle", "KwaZulu-Natal", 2), ("Paarl", "Western Cape", 3),
    ("Somerset West", "Western Cape", 3), ("Bellville", "Western Cape", 4),
    ("Knysna", "Western Cape", 2), ("Hermanus", "Western Cape", 2),
    ("Mossel Bay", "Western Cape", 2), ("Worcester", "Western Cape", 2),
    ("Mthatha", "Eastern Cape", 2), ("Makhanda", "Eastern Cape", 1),
    ("Welkom", "Free State", 2), ("Bethlehem", "Free State", 1),
    ("Upington", "Northern Cape", 1), ("Tzaneen", "Limpopo", 2),
    ("Thohoyandou", "Limpopo", 1), ("Emalahleni", "Mpumalanga", 2),
    ("Secunda", "Mpumalanga", 1), ("Mahikeng", "North West", 1),
    ("Potchefstroom", "North West", 2), ("Klerksdorp", "North West", 2),
]  # fmt: skip


def _words(text: str) -> list[str]:
    return text.split()


SYLLABLES = _words(
    "ba be bo da de di do fa fe ga ge go ha he ja ka ke ki ko la le li lo ma me mi mo na ne "
    "ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vi wa we ya yo za ze zi zo "
    "bel ber dan der dor fen gan ger han hol kan ker lan len man mar nan ner pan per ran ren "
    "san sen tan ter van ver wan wen zan zen"
)
ENDINGS = ["", "", "", "son", "sen", "ni", "la", "ow", "ey", "berg", "dale", "ton", "ez", "ski"]
GIVEN = _words(
    "Amara Bongani Carla Dineo Elias Farah Gugu Hana Ivo Jabu Kira Lebo Mira Nandi Olu Pieter "
    "Quinn Rhea Sipho Tumi Uma Vusi Wren Xoli Yara Zola Anele Bram Cato Dumi Esme Fikile Gert "
    "Hlengi Iris Jono Karabo Lindi Musa Noor Oscar Palesa Riaan Sanele Thando Unathi Vian"
)
CATEGORIES = ["Medical Practitioner", "Medical Practitioner", "Medical Practitioner", "Dentist"]
CLINIC_WORDS = _words(
    "Skin Wellness Aesthetic Family Health Medical Care Laser Rejuvenation Body Vitality "
    "Harmony Renew Glow Balance Sports Pain Joint Hair Derma Clinic Centre Rooms Practice"
)
# How often each service is offered, relative (aesthetic services dominate the directory).
SERVICE_WEIGHTS = {
    "botulinum-toxin": 10, "dermal-fillers": 9, "general-practice": 9, "skin-rejuvenation": 7,
    "chemical-peels": 7, "wrinkle-reduction": 6, "acne": 6, "prp": 5, "mesotherapy": 5,
    "fat-reduction": 5, "hair-regrowth": 4, "weight-loss": 5, "pigmentation": 4,
    "microneedling": 4, "scar-improvement": 4, "cellulite": 3, "stretch-marks": 3,
    "pain-management": 4, "sports-injuries": 3, "arthritis-joint-problems": 3,
    "skin-checks": 3, "dermatology": 2, "laser-hair-removal": 3, "spider-veins": 2,
    "hyperhidrosis": 2, "physiotherapy": 2, "nutrition": 2, "iv-therapy": 2,
    "chronic-conditions": 3, "vaccinations": 3,
}  # fmt: skip
SENTENCES = [
    "Consultations by appointment, weekdays and Saturday mornings.",
    "We explain every option, its cost and what results to expect before any treatment.",
    "A calm practice with free parking and wheelchair access.",
    "Follow-up visits are included for two weeks after a procedure.",
    "Medical aid accepted for consultations; aesthetic treatments are private.",
    "We treat teenagers with a parent or guardian present.",
    "Evening appointments on Tuesdays and Thursdays.",
    "Our nurses speak English, isiZulu, isiXhosa and Afrikaans.",
    "Home visits for elderly patients in the area.",
    "We take time to listen and never rush a consultation.",
]


def surnames(rng: random.Random, count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
        found.add((word + rng.choice(ENDINGS)).capitalize())
    return sorted(found)


def generate(db_url: str, *, practitioners: int, clinics: int, listings: int, seed: int) -> dict:
    from directory import create_app
    from directory.extensions import db
    from directory.listings.models import Clinic, Listing, Service, listing_services
    from directory.listings.vocabulary import sync_services
    from directory.registry.models import Practitioner

    rng = random.Random(seed)
    started = time.monotonic()
    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SEARCH_APPLY_AFTER_COMMIT": False})
    now = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        db.create_all()
        sync_services(db.session)
        db.session.commit()
        engine = db.engine
        with engine.begin() as conn:
            if conn.execute(select(Practitioner.id).limit(1)).first() is not None:
                raise SystemExit("the database already has practitioners; use a fresh file")
            services = dict(conn.execute(select(Service.slug, Service.id)).all())
            service_text = {
                s.slug: (s.name, list(s.synonyms or []))
                for s in db.session.scalars(select(Service))
            }

            family = surnames(rng, 6000)
            rows = []
            for i in range(practitioners):
                number = f"MP{NUMBER_BASE + i:07d}"
                roll = rng.random()
                pending = None
                if roll < 0.80:
                    status, age = "active", rng.uniform(0, 38)  # ~ 1 in 5 of these stale
                elif roll < 0.85:
                    status, age = "active", rng.uniform(40, 400)
                elif roll < 0.88:
                    status, age = "active", rng.uniform(0, 20)
                    pending = now - timedelta(hours=rng.uniform(1, 30))
                elif roll < 0.93:
                    status, age = "inactive", rng.uniform(0, 60)
                elif roll < 0.96:
                    status, age = "suspended", rng.uniform(0, 60)
                elif roll < 0.98:
                    status, age = "erased", rng.uniform(0, 200)
                else:
                    status, age = "deceased", rng.uniform(0, 300)
                verified_at = now - timedelta(days=age, seconds=rng.randrange(86400))
                rows.append(
                    {
                        "registration_number": number,
                        "prefix": "MP",
                        "title": "Dr",
                        "surname": rng.choice(family),
                        "full_names": " ".join(rng.sample(GIVEN, rng.choice((1, 2)))),
                        "category": rng.choice(CATEGORIES),
                        "raw_status": status.upper(),
                        "status": status,
                        "status_as_of": verified_at,
                        "verified_at": verified_at if status == "active" else None,
                        "not_found_pending_since": pending,
                        "last_checked_at": verified_at,
                        "last_outcome": "ok",
                        "consecutive_failures": 0,
                        "next_check_at": verified_at + timedelta(days=7),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if len(rows) == 10_000:
                    conn.execute(insert(Practitioner), rows)
                    rows = []
            if rows:
                conn.execute(insert(Practitioner), rows)

            weights = [w for _, _, w in CITIES]
            clinic_rows = []
            for i in range(clinics):
                city, province, _ = rng.choices(CITIES, weights)[0]
                words = rng.sample(CLINIC_WORDS, 2)
                name = f"{rng.choice(family)} {words[0]} {words[1]} (fictional)"
                clinic_rows.append(
                    {
                        "slug": f"bench-clinic-{i:05d}",
                        "name": name,
                        "description": "A fictional clinic generated for the search benchmark.",
                        "city": city,
                        "province": province,
                        "postal_code": f"{rng.randrange(1, 9999):04d}",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            conn.execute(insert(Clinic), clinic_rows)
            clinic_ids = conn.execute(select(Clinic.id)).scalars().all()
            ids = conn.execute(select(Practitioner.id)).scalars().all()

            # ~21,000 practitioners listed: most once, some at two or three clinics.
            listed = rng.sample(ids, int(listings * 0.84))
            owners = listed + rng.sample(listed, listings - len(listed))
            slugs, service_weights = zip(*SERVICE_WEIGHTS.items(), strict=True)
            listing_rows, pairs, service_links = [], set(), []
            for pid in owners:
                clinic_id = rng.choice(clinic_ids)
                while (pid, clinic_id) in pairs:
                    clinic_id = rng.choice(clinic_ids)
                pairs.add((pid, clinic_id))
                offered = set(
                    rng.choices(slugs, service_weights, k=rng.choice((1, 2, 2, 3, 3, 4, 6)))
                )
                described = [rng.choice([service_text[s][0], *service_text[s][1]]) for s in offered]
                description = (
                    f"{rng.choice(('We offer', 'Offering', 'Treatments:', 'Specialising in'))} "
                    f"{', '.join(d.lower() for d in described)}. "
                    + " ".join(rng.sample(SENTENCES, 2))
                )
                listing_rows.append(
                    {
                        "practitioner_id": pid,
                        "clinic_id": clinic_id,
                        "description": description,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                service_links.append(offered)
            conn.execute(insert(Listing), listing_rows)
            listing_ids = conn.execute(select(Listing.id).order_by(Listing.id)).scalars().all()
            links = [
                {"listing_id": lid, "service_id": services[slug]}
                for lid, offered in zip(listing_ids, service_links, strict=True)
                for slug in offered
            ]
            conn.execute(insert(listing_services), links)
    summary = {
        "practitioners": practitioners,
        "clinics": clinics,
        "listings": listings,
        "listed_practitioners": len(set(owners)),
        "service_links": len(links),
        "seconds": round(time.monotonic() - started, 1),
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file to create (must not exist)")
    parser.add_argument("--practitioners", type=int, default=PRACTITIONERS)
    parser.add_argument("--clinics", type=int, default=CLINICS)
    parser.add_argument("--listings", type=int, default=LISTINGS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    path = Path(args.db)
    if path.exists():
        print(f"{path} exists; remove it or choose another path", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = generate(
        f"sqlite:///{path.resolve()}",
        practitioners=args.practitioners,
        clinics=args.clinics,
        listings=args.listings,
        seed=args.seed,
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
