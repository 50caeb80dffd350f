"""The fictional demo data, generated deterministically from a seed.

Everything here is invented: surnames are words like "Example" and "Sample", clinics sit in
made-up suburbs ("Samplevale"), e-mail and web addresses use the reserved ``.example``
domain, clinics' phone numbers are in ``097 555 0xxx``, a range South Africa has not
allocated (``listings.phones.FICTIONAL_RANGE``: it rings no one), and every registration
number is in the range this project reserves for fiction: ``<prefix>09xxxxx``
(``MP0900000``-``MP0999999``, likewise for ``PT`` and ``DI``).

The register's side (``demo_practitioners``) is a list of planned register answers, applied
through ``record_check`` like any other answer; the clinics' side (``demo_clinic_records``)
is a list of JSON Lines records, imported through ``import_listing_records`` like any file.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from directory.listings.imports import slugify
from directory.listings.vocabulary import by_slug
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.statuses import Outcome

SEED = 20_250_601
SOURCE = "demo-data"
FICTIONAL_NUMBER_INFIX = "09"  # <prefix>09xxxxx: the range reserved for fictional numbers
PRACTITIONER_COUNT = 320
CLINIC_COUNT = 72

# (city, province, postal code, latitude, longitude, weight): real places, fictional people.
CITIES: tuple[tuple[str, str, str, float, float, int], ...] = (
    ("Johannesburg", "Gauteng", "2001", -26.2041, 28.0473, 9),
    ("Sandton", "Gauteng", "2196", -26.1076, 28.0567, 5),
    ("Cape Town", "Western Cape", "8001", -33.9249, 18.4241, 9),
    ("Durban", "KwaZulu-Natal", "4001", -29.8587, 31.0218, 7),
    ("Pretoria", "Gauteng", "0002", -25.7479, 28.2293, 7),
    ("Gqeberha", "Eastern Cape", "6001", -33.9608, 25.6022, 4),
    ("Bloemfontein", "Free State", "9301", -29.0852, 26.1596, 3),
    ("East London", "Eastern Cape", "5201", -33.0153, 27.9116, 3),
    ("Polokwane", "Limpopo", "0700", -23.9045, 29.4689, 3),
    ("Mbombela", "Mpumalanga", "1201", -25.4658, 30.9853, 3),
    ("Kimberley", "Northern Cape", "8301", -28.7282, 24.7499, 2),
    ("Stellenbosch", "Western Cape", "7600", -33.9321, 18.8602, 3),
    ("George", "Western Cape", "6530", -33.9630, 22.4617, 2),
    ("Pietermaritzburg", "KwaZulu-Natal", "3201", -29.6006, 30.3794, 3),
    ("Rustenburg", "North West", "0299", -25.6676, 27.2421, 2),
    ("Umhlanga", "KwaZulu-Natal", "4319", -29.7277, 31.0822, 2),
)

FIRST_NAMES = (
    "THANDI", "SIPHO", "LERATO", "PIETER", "ANIKA", "PRIYA", "NOMVULA", "JOHAN", "AYESHA",
    "KAGISO", "LINDIWE", "RIAAN", "ZANELE", "MOHAMMED", "NALEDI", "SIBUSISO", "CHANTAL",
    "THEMBA", "KARABO", "FATIMA", "RUAN", "NANDI", "BONGANI", "ELISE", "TEBOGO", "YUSUF",
    "ZINHLE", "MARIUS", "PALESA", "RAJESH", "BUSISIWE", "FRANCOIS", "MPHO", "LEILA", "ANDILE",
    "CARMEN", "THABO", "INGRID", "LWAZI", "REFILWE",
)  # fmt: skip
MIDDLE_NAMES = ("", "", "", "MARIE", "JAMES", "GRACE", "DAVID", "ROSE", "PAUL", "ANNE")
# Surnames nobody has: they say "this is an example" in several languages.
SURNAMES = (
    "EXAMPLE", "SAMPLE", "SPECIMEN", "PLACEHOLDER", "FICTITIOUS", "MADEUP", "INVENTED",
    "PRETEND", "IMAGINARY", "EXEMPLAR", "STANDIN", "MOCKUP", "VOORBEELD", "ISIBONELO",
    "DEMONSTRATION", "TESTCASE", "PROTOTYPE", "TEMPLATE", "SURROGATE", "SIMULATED",
)  # fmt: skip

AREAS = (
    "Exampleton", "Samplevale", "Demohurst", "Mockridge", "Placeholder Park", "Fiction Bay",
    "Madeup Heights", "Pretendale", "Imaginary Gardens", "Specimen Hill", "Invented Square",
    "Testwood", "Notreal Glen", "Lorem Ridge", "Ipsum Park", "Sampleton", "Exemplar Court",
    "Mockford",
)  # fmt: skip
STREETS = ("Example", "Sample", "Specimen", "Placeholder", "Fiction", "Demo", "Madeup")

# Clinic kinds: the services their doctors offer, and the sentence that introduces them.
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "Aesthetic Clinic": (
        ("mesotherapy", "botulinum-toxin", "dermal-fillers", "skin-rejuvenation",
         "wrinkle-reduction", "chemical-peels", "prp", "fat-reduction", "cellulite",
         "pigmentation", "microneedling", "hyperhidrosis", "stretch-marks", "scar-improvement"),
        "A doctor-led aesthetic clinic offering injectables, skin treatments and body contouring.",
    ),
    "Skin & Laser Centre": (
        ("laser-hair-removal", "pigmentation", "acne", "scar-improvement", "chemical-peels",
         "skin-rejuvenation", "microneedling", "spider-veins", "skin-checks", "stretch-marks"),
        "Laser and light treatments, peels and skin checks under one roof.",
    ),
    "Medical Centre": (
        ("general-practice", "chronic-conditions", "vaccinations", "skin-checks", "weight-loss",
         "iv-therapy", "pain-management", "acne"),
        "A walk-in and appointment medical centre for everyday health care.",
    ),
    "Family Practice": (
        ("general-practice", "chronic-conditions", "vaccinations", "weight-loss", "acne",
         "skin-checks", "arthritis-joint-problems"),
        "A family practice looking after children and adults, with chronic care clinics.",
    ),
    "Pain & Sports Clinic": (
        ("pain-management", "sports-injuries", "arthritis-joint-problems", "prp", "mesotherapy"),
        "Doctors treating pain, joint problems and sports injuries, with on-site rehabilitation.",
    ),
    "Hair Clinic": (
        ("hair-regrowth", "prp", "mesotherapy", "dermatology"),
        "A clinic for thinning hair and hair loss in women and men.",
    ),
    "Dermatology Rooms": (
        ("dermatology", "acne", "skin-checks", "pigmentation", "scar-improvement",
         "hyperhidrosis", "hair-regrowth"),
        "Specialist rooms for skin, hair and nail conditions.",
    ),
    "Weight & Wellness Clinic": (
        ("weight-loss", "fat-reduction", "cellulite", "mesotherapy", "iv-therapy",
         "chronic-conditions"),
        "Medically supervised weight management with dietitian support.",
    ),
    "Physio & Rehab": (
        ("physiotherapy", "sports-injuries", "pain-management", "arthritis-joint-problems"),
        "Physiotherapy and rehabilitation after injury, surgery or long-term pain.",
    ),
    "Mesotherapy & Body Clinic": (
        ("mesotherapy", "fat-reduction", "cellulite", "stretch-marks", "hair-regrowth",
         "skin-rejuvenation", "weight-loss"),
        "Mesotherapy and body treatments: fat reduction, cellulite, stretch marks and hair.",
    ),
}  # fmt: skip

# What non-doctors offer, whatever the clinic: physiotherapists and dietitians.
PREFIX_SERVICES = {
    "PT": ("physiotherapy", "sports-injuries", "pain-management", "arthritis-joint-problems"),
    "DI": ("nutrition", "weight-loss", "chronic-conditions"),
}
# How clinics write services in their own files: sometimes the slug, sometimes a synonym.
CLINIC_SPELLINGS = {
    "botulinum-toxin": ("botulinum-toxin", "Botox", "anti-wrinkle injections"),
    "dermal-fillers": ("dermal-fillers", "fillers", "Lip fillers"),
    "fat-reduction": ("fat-reduction", "fat dissolving", "Lipolysis"),
    "hair-regrowth": ("hair-regrowth", "hair loss", "Hair re-growth"),
    "prp": ("prp", "PRP", "platelet-rich plasma"),
    "mesotherapy": ("mesotherapy", "Mesotherapy", "meso"),
    "general-practice": ("general-practice", "GP", "Family doctor"),
    "weight-loss": ("weight-loss", "slimming", "Weight loss"),
}

SERVICE_SENTENCES: dict[str, tuple[str, ...]] = {
    "mesotherapy": (
        "Mesotherapy starts with a consultation: we explain exactly what will be injected, how "
        "many sessions are usually needed and what results are realistic.",
        "Offers mesotherapy micro-injections for the face, scalp and body.",
    ),
    "fat-reduction": (
        "Fat-dissolving injections for small areas such as the double chin or lower belly, "
        "after a check that they are suitable for you.",
        "Non-surgical fat reduction for stubborn areas; not a substitute for weight loss.",
    ),
    "cellulite": (
        "Cellulite treatment plans combining injections and skin-tightening sessions.",
        "Treats the dimpled look of cellulite on thighs and buttocks; results are modest.",
    ),
    "hair-regrowth": (
        "Assesses the cause of hair loss first, then offers PRP, mesotherapy or medicines.",
        "Hair regrowth programmes for thinning hair, with photographs to follow progress.",
    ),
    "wrinkle-reduction": (
        "Softens frown lines and crow's feet with a conservative, natural-looking approach.",
    ),
    "skin-rejuvenation": (
        "Skin boosters and rejuvenation treatments for tired, dull or uneven skin.",
        "Skin rejuvenation courses tailored to your skin type and the time you have.",
    ),
    "scar-improvement": (
        "Acne scars and surgical scars treated with microneedling, peels or injections.",
    ),
    "acne": (
        "Acne care from prescription creams and tablets to peels, for teenagers and adults.",
    ),
    "stretch-marks": (
        "Stretch mark treatments with microneedling and topical therapy; they fade, rarely "
        "vanish.",
    ),
    "pain-management": (
        "Chronic pain assessment with medication reviews, injections and exercise plans.",
        "Back and neck pain clinics on weekday mornings.",
    ),
    "arthritis-joint-problems": (
        "Joint injections and medication for osteoarthritis of the knee, hip and hand.",
        "Helps people with arthritis stay active, with injections where they help.",
    ),
    "sports-injuries": (
        "Sports injuries seen within a day or two, from sprains to tendon problems.",
        "Works with local clubs on sports injuries and return-to-play plans.",
    ),
    "weight-loss": (
        "A medically supervised weight-loss programme with regular check-ins.",
        "Weight management consultations, including medicines where suitable.",
    ),
    "botulinum-toxin": (
        "Botulinum toxin (Botox) for frown lines, crow's feet and heavy sweating.",
        "Anti-wrinkle injections by a doctor, with a free review two weeks later.",
    ),
    "dermal-fillers": (
        "Hyaluronic acid fillers for lips, cheeks and folds; the product used is named on "
        "your record.",
        "Dermal fillers with a conservative approach and a follow-up visit included.",
    ),
    "prp": (
        "PRP (platelet-rich plasma) for skin, scalp and some joint and tendon problems.",
        "Offers the 'vampire facial' (PRP with microneedling) and PRP for hair loss.",
    ),
    "chemical-peels": (
        "Light to medium chemical peels for tone, texture and mild acne scarring.",
    ),
    "general-practice": (
        "General practice for the whole family: check-ups, repeat scripts and referrals.",
        "A GP with a special interest in women's health and chronic care.",
    ),
    "skin-checks": (
        "Full-body skin checks and mole mapping with a dermatoscope.",
    ),
    "dermatology": (
        "Treats eczema, psoriasis, rosacea and other skin conditions.",
    ),
    "pigmentation": (
        "Pigmentation and melasma treatment plans with sun protection advice.",
    ),
    "microneedling": (
        "Microneedling for scars, stretch marks and skin texture.",
    ),
    "laser-hair-removal": (
        "Laser hair removal for face and body, suitable for most skin tones after a patch test.",
    ),
    "spider-veins": (
        "Sclerotherapy for spider and thread veins on the legs.",
    ),
    "hyperhidrosis": (
        "Treatment for excessive underarm and hand sweating.",
    ),
    "physiotherapy": (
        "Physiotherapy after injury or surgery, with a home exercise programme.",
        "Hands-on physiotherapy and rehabilitation for back, neck and sports problems.",
    ),
    "nutrition": (
        "Dietitian consultations for weight, diabetes, cholesterol and food allergies.",
    ),
    "iv-therapy": (
        "IV drips only after a consultation on whether you need one.",
    ),
    "chronic-conditions": (
        "Chronic care clinics for diabetes, high blood pressure and asthma.",
    ),
    "vaccinations": (
        "Childhood and adult vaccinations, flu shots and travel vaccines.",
    ),
}  # fmt: skip
CLOSINGS = (
    "Consultations by appointment.",
    "Medical aid accepted for consultations; aesthetic treatments are private.",
    "Saturday morning appointments available.",
    "Please bring a list of your current medicines to the first visit.",
    "English, Afrikaans and isiZulu spoken.",
    "",
)

# How many practitioners get each register history. The rest are active and fresh.
SCENARIOS: dict[str, int] = {
    "stale": 14,  # active, but last confirmed 35-150 days ago
    "suspended": 7,  # active long ago, suspended recently (a status event)
    "erased": 4,
    "inactive": 3,
    "deceased": 1,
    "several_categories": 8,  # several category rows, one active: active
    "several_categories_suspended": 3,  # an active row and a suspended one: suspended
    "pending_not_found": 4,  # confirmed active, then one unconfirmed not-found
    "not_found": 2,  # never found
    "unknown_status": 1,  # a raw status the mapping does not know
}
FRESH_SCENARIOS = ("fresh", "several_categories")


@dataclass(frozen=True)
class PlannedCheck:
    """One register answer to replay: how long ago, what it said (category, raw status)."""

    age: timedelta
    outcome: Outcome
    rows: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DemoPractitioner:
    registration_number: str
    title: str
    surname: str
    full_names: str
    city: str
    postal_code: str
    scenario: str
    checks: tuple[PlannedCheck, ...]

    @property
    def prefix(self) -> str:
        return self.registration_number[:-7]

    def result(self, check: PlannedCheck, now: datetime) -> LookupResult:
        """The planned answer as a source would have given it, ``check.age`` before ``now``."""
        rows = tuple(
            RegisterRow(
                registration_number=self.registration_number,
                title=self.title,
                surname=self.surname,
                full_names=self.full_names,
                city=self.city.upper(),
                postal_code=self.postal_code,
                category=category,
                status=status,
            )
            for category, status in check.rows
        )
        digest = hashlib.sha256(
            json.dumps([self.registration_number, check.outcome, check.rows]).encode()
        ).hexdigest()
        return LookupResult(
            registration_number=self.registration_number,
            outcome=check.outcome,
            observed_at=now - check.age,
            source=SOURCE,
            rows=rows,
            digest=digest,
            duration_ms=0,
        )


def _days(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=round(rng.uniform(low, high) * 24 * 60))


def _checks(scenario: str, rng: random.Random) -> tuple[PlannedCheck, ...]:
    practice = "INDEPENDENT PRACTICE"
    ok = Outcome.OK
    if scenario == "fresh":
        return (PlannedCheck(_days(rng, 0, 20), ok, ((practice, "ACTIVE"),)),)
    if scenario == "stale":
        return (PlannedCheck(_days(rng, 35, 150), ok, ((practice, "ACTIVE"),)),)
    if scenario in ("suspended", "erased"):
        raw = rng.choice(
            ("SUSPENDED", "SUSPENDED - NON PAYMENT", "SUSPENDED - DISCIPLINARY")
            if scenario == "suspended"
            else ("ERASED", "ERASED - NON PAYMENT")
        )
        return (
            PlannedCheck(_days(rng, 200, 400), ok, ((practice, "ACTIVE"),)),
            PlannedCheck(_days(rng, 2, 25), ok, ((practice, raw),)),
        )
    if scenario == "inactive":
        return (PlannedCheck(_days(rng, 1, 20), ok, ((practice, "NOT PRACTISING"),)),)
    if scenario == "deceased":
        return (PlannedCheck(_days(rng, 1, 20), ok, ((practice, "DECEASED"),)),)
    if scenario == "several_categories":
        # An old intern or public-service row is routinely inactive: still active overall.
        others = rng.choice(
            (
                (("PUBLIC SERVICE", "INACTIVE"),),
                (("INTERN", "INACTIVE"),),
                (("INTERN", "INACTIVE"), ("PUBLIC SERVICE", "NOT PRACTISING")),
            )
        )
        return (PlannedCheck(_days(rng, 0, 20), ok, ((practice, "ACTIVE"), *others)),)
    if scenario == "several_categories_suspended":
        rows = ((practice, "ACTIVE"), ("PUBLIC SERVICE", "SUSPENDED - NON PAYMENT"))
        return (PlannedCheck(_days(rng, 0, 20), ok, rows),)
    if scenario == "pending_not_found":
        return (
            PlannedCheck(_days(rng, 5, 20), ok, ((practice, "ACTIVE"),)),
            PlannedCheck(timedelta(minutes=rng.randint(5, 40)), Outcome.NOT_FOUND),
        )
    if scenario == "not_found":
        return (PlannedCheck(_days(rng, 1, 10), Outcome.NOT_FOUND),)
    if scenario == "unknown_status":
        return (PlannedCheck(_days(rng, 1, 10), ok, ((practice, "UNDER REVIEW"),)),)
    raise ValueError(f"unknown demo scenario {scenario!r}")


def demo_practitioners(seed: int = SEED) -> list[DemoPractitioner]:
    """The register's side: 320 fictional registrations and the answers to replay for each."""
    rng = random.Random(seed)
    prefixes = ["MP"] * 285 + ["PT"] * 20 + ["DI"] * 15
    assert len(prefixes) == PRACTITIONER_COUNT
    scenarios = [s for s, n in SCENARIOS.items() for _ in range(n)]
    scenarios += ["fresh"] * (PRACTITIONER_COUNT - len(scenarios))
    rng.shuffle(scenarios)
    digits = rng.sample(range(100_000), PRACTITIONER_COUNT)
    names = rng.sample([(f, s) for f in FIRST_NAMES for s in SURNAMES], PRACTITIONER_COUNT)
    weights = [c[5] for c in CITIES]
    out = []
    for i, prefix in enumerate(prefixes):
        first, surname = names[i]
        middle = rng.choice(MIDDLE_NAMES)
        city = rng.choices(CITIES, weights=weights)[0]
        title = "DR" if prefix == "MP" else rng.choice(("MR", "MS", "MRS"))
        scenario = scenarios[i]
        out.append(
            DemoPractitioner(
                registration_number=f"{prefix}{FICTIONAL_NUMBER_INFIX}{digits[i]:05d}",
                title=title,
                surname=surname,
                full_names=f"{first} {middle}".strip(),
                city=city[0],
                postal_code=city[2],
                scenario=scenario,
                checks=_checks(scenario, rng),
            )
        )
    return out


def demo_clinic_records(practitioners: list[DemoPractitioner], seed: int = SEED) -> list[dict]:
    """The clinics' side: 72 fictional clinics, as JSON Lines records for the importer."""
    rng = random.Random(seed + 1)
    doctors_by_city: dict[str, list[DemoPractitioner]] = {}
    others: dict[str, list[DemoPractitioner]] = {"PT": [], "DI": []}
    for p in practitioners:
        if p.prefix == "MP":
            doctors_by_city.setdefault(p.city, []).append(p)
        else:
            others[p.prefix].append(p)
    all_doctors = [p for p in practitioners if p.prefix == "MP"]

    cities = [city for city, count in zip(CITIES, _clinics_per_city(), strict=True)
              for _ in range(count)]  # fmt: skip
    rng.shuffle(cities)
    kinds = list(KINDS)
    records: list[dict] = []
    used_slugs: set[str] = set()
    for index, (city, province, postal_code, lat, lon, _weight) in enumerate(cities):
        kind = kinds[index % len(kinds)]
        area = rng.choice(AREAS)
        name = f"{area} {kind}"
        slug = slugify(f"{name} {city}")
        while slug in used_slugs:
            area = rng.choice(AREAS)
            name = f"{area} {kind}"
            slug = slugify(f"{name} {city}")
        used_slugs.add(slug)
        pool, intro = KINDS[kind]
        clinic = {
            "name": name,
            "slug": slug,
            "description": f"{intro} This is a fictional clinic in the demo data.",
            "street_address": f"{rng.randint(1, 250)} {rng.choice(STREETS)} Street, {area}",
            "city": city,
            "province": province,
            "postal_code": postal_code,
            "latitude": round(lat + rng.uniform(-0.04, 0.04), 5),
            "longitude": round(lon + rng.uniform(-0.04, 0.04), 5),
        }
        if index % 6 != 5:  # most clinics give a phone number: one that reaches no one
            clinic["phone"] = fictional_phone(index)
        if rng.random() < 0.8:
            clinic["email"] = f"reception@{slug}.example"
        if rng.random() < 0.7:
            clinic["website"] = f"https://{slug}.example"

        staff: list[DemoPractitioner] = []
        if kind == "Physio & Rehab":
            staff += rng.sample(others["PT"], rng.randint(2, 3))
        else:
            local = doctors_by_city.get(city, [])
            count = rng.randint(2, 5)
            picks = rng.sample(local, min(count, len(local)))
            picks += rng.sample(all_doctors, count - len(picks))
            staff += [p for p in dict.fromkeys(picks)]
            if kind in ("Weight & Wellness Clinic", "Medical Centre") and rng.random() < 0.6:
                staff.append(rng.choice(others["DI"]))
            if kind == "Pain & Sports Clinic":
                staff.append(rng.choice(others["PT"]))
        listings = []
        for practitioner in dict.fromkeys(staff):
            offered = _services_for(practitioner, kind, pool, rng)
            listings.append(
                {
                    "registration_number": practitioner.registration_number,
                    "services": [
                        rng.choice(CLINIC_SPELLINGS.get(slug, (slug,))) for slug in offered
                    ],
                    "description": _description(practitioner, offered, city, rng),
                }
            )
        records.append({"clinic": clinic, "listings": listings})
    return records


def fictional_phone(index: int) -> str:
    """The demo's phone number ``index`` (0-999): ``097 555 0xxx``, in the range
    ``listings.phones.FICTIONAL_RANGE``: unallocated in South Africa, so it rings no one."""
    if not 0 <= index < 1000:
        raise ValueError("the fictional phone range holds 1,000 numbers")
    return f"097 555 0{index:03d}"


def _clinics_per_city() -> list[int]:
    """Every city gets a clinic; the rest go where more people live (by weight)."""
    total = sum(c[5] for c in CITIES)
    counts = [max(1, round(CLINIC_COUNT * c[5] / total)) for c in CITIES]
    while sum(counts) != CLINIC_COUNT:
        biggest = counts.index(max(counts))
        counts[biggest] += 1 if sum(counts) < CLINIC_COUNT else -1
    return counts


def _services_for(
    practitioner: DemoPractitioner, kind: str, pool: tuple[str, ...], rng: random.Random
) -> list[str]:
    if practitioner.prefix in PREFIX_SERVICES:
        options = PREFIX_SERVICES[practitioner.prefix]
        return rng.sample(options, rng.randint(1, len(options)))
    doctor_pool = [s for s in pool if s not in ("physiotherapy", "nutrition")]
    chosen = rng.sample(doctor_pool, rng.randint(2, min(6, len(doctor_pool))))
    # What each kind of clinic is known for: always (1.0) or often.
    signature = {
        "Hair Clinic": (("hair-regrowth", 1.0),),
        "Mesotherapy & Body Clinic": (("mesotherapy", 1.0),),
        "Aesthetic Clinic": (("botulinum-toxin", 0.7), ("dermal-fillers", 0.5)),
        "Family Practice": (("general-practice", 0.9),),
        "Medical Centre": (("general-practice", 0.8),),
    }
    for slug, chance in signature.get(kind, ()):
        if slug not in chosen and rng.random() < chance:
            chosen.insert(0, slug)
    return chosen


def _description(
    practitioner: DemoPractitioner, services: list[str], city: str, rng: random.Random
) -> str:
    name = f"{practitioner.full_names.split()[0].title()} {practitioner.surname.title()}"
    who = f"Dr {name}" if practitioner.title == "DR" else name
    intro = rng.choice(
        (
            f"{who} has practised in {city} since {rng.randint(1998, 2021)}.",
            f"{who} sees patients here {rng.choice(('on weekdays', 'three days a week', 'on Tuesdays and Thursdays', 'by appointment'))}.",  # noqa: E501
            f"{who} joined the practice in {rng.randint(2010, 2023)}.",
            f"{who} trained in South Africa and has a special interest in "
            f"{_plain_name(rng.choice(services))}.",
        )
    )
    sentences = [rng.choice(SERVICE_SENTENCES[slug]) for slug in services[:2]]
    return " ".join(s for s in (intro, *sentences, rng.choice(CLOSINGS)) if s)


def _plain_name(slug: str) -> str:
    """A service's name as it reads mid-sentence: "botulinum toxin", but "PRP (...)"."""
    name = by_slug()[slug].name
    return name if name[:2].isupper() else name[0].lower() + name[1:]
