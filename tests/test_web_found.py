"""Being found and shared: meta descriptions and Open Graph tags, canonical addresses (never
from the Host header), /sitemap.xml (a paged index) and /robots.txt, schema.org JSON-LD
(escaped so no clinic's text can end its element), the favicon and the share link. The
sitemaps are read on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from urllib.parse import urlsplit

import pytest

from directory import create_app
from directory.extensions import db
from directory.listings.models import Clinic
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from tests import test_web_pages as pages
from tests import web_fixtures as wf

NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
PUBLIC = "https://directory.example.org"

# The web pages' fixtures: the fictional directory, and no register server (pages never call it).
directory_data = pages.directory_data
fake_iregister = pages.fake_iregister
HOSTILE_NAME = "Fictional </script><script>alert(1)</script> & 'Co' <!--"


def build(app) -> None:
    with app.app_context():
        wf.build_directory(db.session, RegistryPolicy.from_config(app.config))


def meta(html: str) -> dict[str, str]:
    """``name``/``property`` -> content of every <meta>, and ``canonical`` from its <link>."""
    found = {
        name: unescape(content)
        for name, content in re.findall(
            r'<meta (?:name|property)="([^"]+)" content="([^"]*)">', html
        )
    }
    link = re.search(r'<link rel="canonical" href="([^"]+)">', html)
    if link:
        found["canonical"] = unescape(link.group(1))
    return found


def json_ld(html: str) -> dict:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(blocks) == 1, blocks
    return json.loads(blocks[0])


# --- meta description, Open Graph, canonical ------------------------------------------------


def test_every_page_has_its_own_description_open_graph_and_canonical(client, directory_data):
    pages = {
        "/": "http://localhost/",
        "/services": "http://localhost/services",
        "/services/mesotherapy": "http://localhost/services/mesotherapy",
        f"/practitioners/{directory_data['active']}": f"http://localhost/practitioners/{directory_data['active']}",
        "/clinics/fictional-harbour-skin-clinic": (
            "http://localhost/clinics/fictional-harbour-skin-clinic"
        ),
        "/check": "http://localhost/check",
        "/search?where=Cape+Town&q=meso": "http://localhost/search?q=meso&where=Cape+Town",
    }
    descriptions = set()
    for path, canonical in pages.items():
        html = client.get(path).data.decode()
        tags = meta(html)
        assert len(tags["description"]) > 40, path
        assert tags["og:description"] == tags["description"], path
        assert tags["canonical"] == canonical == tags["og:url"], path
        title = unescape(re.search(r"<title>(.*?) · ", html).group(1))
        assert tags["og:title"] == title, path
        assert tags["og:site_name"] == "HPCSA practitioner directory"
        assert tags["og:image"].startswith("http://localhost/assets/icon.")
        assert tags["og:locale"] == "en_ZA"
        descriptions.add(tags["description"])
    assert len(descriptions) == len(pages)  # each page says what it is
    profile = meta(client.get(f"/practitioners/{directory_data['active']}").data.decode())
    assert profile["og:type"] == "profile"
    assert directory_data["active"] in profile["description"]
    assert "Registered with the HPCSA: active" in profile["description"]


def test_canonical_drops_query_strings_except_on_the_results_page(client, directory_data):
    tags = meta(client.get("/services?utm_source=x").data.decode())
    assert tags["canonical"] == "http://localhost/services"


@pytest.mark.parametrize("path", ["/no-such-page", "/clinics/no-such-clinic", "/services/none"])
def test_error_pages_are_not_indexed_and_have_no_address(client, path):
    html = client.get(path).data.decode()
    assert '<meta name="robots" content="noindex">' in html
    assert "canonical" not in meta(html) and "og:url" not in meta(html)


def test_a_huge_address_is_never_quoted_back_as_the_canonical(client):
    html = client.get("/search?q=" + "x" * 3000).data.decode()
    assert "canonical" not in meta(html) and len(html) < 20_000


def test_canonical_and_sitemap_never_take_the_host_header(app_config, tmp_path):
    app = create_app({**app_config, "PUBLIC_BASE_URL": PUBLIC})
    with app.app_context():
        db.create_all()
    build(app)
    client = app.test_client()
    for host in ("evil.example", "directory.example.org"):
        html = client.get("/services", headers={"Host": host}).data.decode()
        assert meta(html)["canonical"] == f"{PUBLIC}/services"
        assert "evil.example" not in html
        sitemap = client.get("/sitemap.xml", headers={"Host": host}).data.decode()
        assert "evil.example" not in sitemap and f"{PUBLIC}/sitemaps/" in sitemap
        robots = client.get("/robots.txt", headers={"Host": host}).data.decode()
        assert f"Sitemap: {PUBLIC}/sitemap.xml" in robots
    # Without PUBLIC_BASE_URL, a host that is not trusted is refused outright.
    default = create_app(app_config).test_client()
    assert default.get("/services", headers={"Host": "evil.example"}).status_code == 400


# --- sitemap and robots ---------------------------------------------------------------------


def read_sitemaps(client) -> tuple[list[str], list[str]]:
    """Every sitemap the index names, and every page URL in them (each file checked)."""
    index = client.get("/sitemap.xml")
    assert index.status_code == 200 and index.mimetype == "application/xml"
    root = ET.fromstring(index.data)
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    files = [loc.text for loc in root.findall("s:sitemap/s:loc", NS)]
    urls: list[str] = []
    for file_url in files:
        response = client.get(urlsplit(file_url).path)
        assert response.status_code == 200, file_url
        assert response.headers["Cache-Control"] == "public, max-age=3600"
        urlset = ET.fromstring(response.data)
        assert urlset.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
        for entry in urlset.findall("s:url", NS):
            lastmod = entry.find("s:lastmod", NS)
            if lastmod is not None:
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", lastmod.text)
        urls.extend(loc.text for loc in urlset.findall("s:url/s:loc", NS))
    return files, urls


def expected_urls(app) -> set[str]:
    with app.app_context():
        practitioners = db.session.scalars(db.select(Practitioner.registration_number)).all()
        clinics = db.session.scalars(db.select(Clinic.slug)).all()
    return (
        {"http://localhost/", "http://localhost/services", "http://localhost/check"}
        | {f"http://localhost/practitioners/{n}" for n in practitioners}
        | {f"http://localhost/clinics/{slug}" for slug in clinics}
        | {f"http://localhost/services/{s['slug']}" for s in wf.SERVICES}
    )


def check_sitemaps(app) -> None:
    app.config["SITEMAP_URLS_PER_FILE"] = 3
    client = app.test_client()
    files, urls = read_sitemaps(client)
    assert len(urls) == len(set(urls))  # no page twice
    assert set(urls) == expected_urls(app)
    practitioner_files = [f for f in files if "/sitemaps/practitioners-" in f]
    assert len(practitioner_files) == -(-len(wf.PEOPLE) // 3) > 1  # paged at 3 a file
    for file_url in files:
        assert len(ET.fromstring(client.get(urlsplit(file_url).path).data)) <= 3
    assert client.get("/sitemaps/practitioners-999.xml").status_code == 404
    assert client.get("/sitemaps/practitioners-0.xml").status_code == 404
    assert client.get("/sitemaps/secrets-1.xml").status_code == 404


def test_sitemap_index_pages_every_practitioner_clinic_and_treatment(app):
    build(app)
    check_sitemaps(app)


@pytest.mark.postgres
def test_sitemap_on_postgresql(pg_app):
    build(pg_app)
    check_sitemaps(pg_app)


def test_sitemap_of_an_empty_directory_is_still_valid(client):
    files, urls = read_sitemaps(client)
    assert [urlsplit(f).path for f in files] == ["/sitemaps/pages-1.xml"]
    assert len(urls) == 3


def test_robots_txt_names_the_sitemap_and_keeps_crawlers_out_of_private_and_endless_pages(
    client,
):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    lines = response.data.decode().splitlines()
    assert lines[0] == "User-agent: *"
    for path in ("/account/", "/api/", "/search", "/check", "/*/report", "/report-received"):
        assert f"Disallow: {path}" in lines
    assert "Sitemap: http://localhost/sitemap.xml" in lines


# --- JSON-LD ------------------------------------------------------------------------------


def test_practitioner_json_ld_is_a_physician_with_the_registration_as_identifier(
    client, directory_data
):
    number = directory_data["active"]
    data = json_ld(client.get(f"/practitioners/{number}").data.decode())
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "Physician"
    assert data["name"] == "Dr Ayanda Example Fictional-Mokoena"
    assert data["identifier"] == {
        "@type": "PropertyValue",
        "propertyID": "HPCSA registration number",
        "value": number,
    }
    assert data["url"] == f"http://localhost/practitioners/{number}"
    clinics = {c["name"]: c for c in data["location"]}
    harbour = clinics["Fictional Harbour Skin Clinic"]
    assert harbour["@type"] == "MedicalClinic"
    assert harbour["address"]["addressLocality"] == "Cape Town"
    assert harbour["address"]["addressCountry"] == "ZA"


def test_a_practitioner_on_another_register_is_not_called_a_physician(app, client, policy):
    from directory.registry.checks import new_practitioner
    from directory.registry.recording import record_check
    from directory.registry.statuses import Outcome
    from directory.util.clock import utcnow

    person = wf.Person(
        "prc", "PRC0000401", "MR", "FICTIONAL-PETERSEN", "CARL SAMPLE",
        (("REGISTERED COUNSELLOR", "ACTIVE"),), (),
    )  # fmt: skip
    with app.app_context():
        record_check(
            db.session, new_practitioner(person.number), wf.lookup(person, Outcome.OK, utcnow()),
            policy,
        )  # fmt: skip
        db.session.commit()
    data = json_ld(client.get("/practitioners/PRC0000401").data.decode())
    assert data["@type"] == "Person"
    assert data["identifier"]["value"] == "PRC0000401"
    assert data["hasOccupation"] == {"@type": "Occupation", "name": "Registered counsellors"}


@pytest.mark.parametrize("key", ["erased", "deceased"])
def test_a_doctor_the_register_no_longer_lists_is_not_called_a_physician(
    client, directory_data, key
):
    data = json_ld(client.get(f"/practitioners/{directory_data[key]}").data.decode())
    assert data["@type"] == "Person"
    assert data["hasOccupation"]["name"] == "Medical practitioners"


def test_a_number_the_register_does_not_know_gets_no_json_ld(client, directory_data):
    html = client.get(f"/practitioners/{directory_data['not_found']}").data.decode()
    assert "application/ld+json" not in html


def test_clinic_json_ld_is_a_medical_clinic_listing_its_practitioners(client, directory_data):
    data = json_ld(client.get("/clinics/fictional-harbour-skin-clinic").data.decode())
    assert data["@type"] == "MedicalClinic"
    assert data["name"] == "Fictional Harbour Skin Clinic"
    assert data["telephone"] and data["email"] == "hello@harbour.example"
    identifiers = {e["identifier"]["value"] for e in data["employee"]}
    assert directory_data["active"] in identifiers and directory_data["suspended"] in identifiers


def test_clinic_text_cannot_end_the_json_ld_element(app, client, directory_data):
    with app.app_context():
        clinic = db.session.scalar(
            db.select(Clinic).where(Clinic.slug == "fictional-harbour-skin-clinic")
        )
        clinic.name = HOSTILE_NAME
        clinic.street_address = "1 </SCRIPT> Road"
        db.session.commit()
    profile = f"/practitioners/{directory_data['active']}"
    for path in ("/clinics/fictional-harbour-skin-clinic", profile):
        html = client.get(path).data.decode()
        block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
        assert "<" not in block.group(1) and ">" not in block.group(1), path
        assert html.lower().count("<script") == 1, path  # only the data block
        data = json_ld(html)
        places = [data] if data["@type"] == "MedicalClinic" else data["location"]
        assert HOSTILE_NAME in [p["name"] for p in places], path
        assert "1 </SCRIPT> Road" in [p["address"].get("streetAddress") for p in places]


# --- favicon and share link ---------------------------------------------------------------


def test_favicon_is_served_and_linked(client):
    html = client.get("/").data.decode()
    icons = re.findall(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"', html)
    assert len(icons) == 3
    for href in icons:
        response = client.get(href)
        assert response.status_code == 200 and response.mimetype.startswith("image/"), href
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.data[:4] == b"\x00\x00\x01\x00"
    assert ico.headers["Cache-Control"] == "public, max-age=86400"


@pytest.mark.parametrize("page", ["practitioner", "clinic"])
def test_share_link_is_the_canonical_address_and_plain_links(client, directory_data, page):
    path = (
        f"/practitioners/{directory_data['active']}"
        if page == "practitioner"
        else "/clinics/fictional-harbour-skin-clinic"
    )
    html = client.get(path).data.decode()
    canonical = meta(html)["canonical"]
    share = html[html.index('<section class="share"') :]
    share = share[: share.index("</section>")]
    assert '<label for="share-address">Link to this page</label>' in share
    assert f'value="{canonical}" readonly' in share
    assert 'href="https://wa.me/?text=' in share and 'href="mailto:?subject=' in share
    assert "<script" not in share
