"""Per-client rate limits (directory/ratelimits.py): 429 with Retry-After for pages and the
API, search counted apart, probes and files never limited, one client per trusted address,
counts shared through Redis, and a Redis that does not answer never a 500."""

from __future__ import annotations

import logging
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid

import pytest
from limits.storage import MemoryStorage

from directory import create_app, ratelimits
from directory.extensions import db
from tests.accounts_support import csrf_of
from tests.test_deploy_proxy import free_port, start_gunicorn, wait_for_port


@pytest.fixture
def app(either_app):
    """Every test that asks for pages here, on SQLite and on PostgreSQL (``limited_app`` is
    given ``same_db_config``: the limits in front of a database-backed site)."""
    return either_app


def limited_app(app_config, **settings):
    app = create_app(
        {
            **app_config,
            "RATE_LIMIT_PAGES": "3 per minute",
            "RATE_LIMIT_API": "2 per minute",
            "RATE_LIMIT_SEARCH": "2 per minute",
            "METRICS_ENABLED": True,
            **settings,
        }
    )
    with app.app_context():
        db.create_all()
    return app


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_client_over_the_page_limit_gets_a_429_page_with_retry_after(same_db_config):
    app = limited_app(same_db_config)
    client = client_at(app, "10.0.0.1")
    assert [client.get("/services").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/services")
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "Too many requests" in page and "<h1" in page
    assert f"wait {response.headers['Retry-After']} second" in page
    # another client is not held back; the API has its own count
    assert client_at(app, "10.0.0.2").get("/services").status_code == 200
    assert client.get("/api/v1/services").status_code == 200


def test_a_client_over_the_api_limit_gets_a_problem_with_retry_after(same_db_config):
    app = limited_app(same_db_config)
    client = client_at(app, "10.0.1.1")
    assert [client.get("/api/v1/services").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/services")
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    problem = response.get_json()
    assert problem["status"] == 429 and problem["code"] == "too_many_requests"
    assert problem["instance"] == "/api/v1/services"
    assert "Try again in" in problem["detail"]
    # unknown API paths count too (a scanner), and answer a problem
    assert client.get("/api/v1/no-such-thing").status_code == 429
    assert client.get("/services").status_code == 200  # pages are counted apart


def test_searches_have_their_own_tighter_count(same_db_config):
    app = limited_app(
        same_db_config, RATE_LIMIT_PAGES="10 per minute", RATE_LIMIT_API="10 per minute"
    )
    client = client_at(app, "10.0.2.1")
    assert [client.get("/search?q=botox").status_code for _ in range(2)] == [200, 200]
    assert client.get("/search?q=botox").status_code == 429
    assert client.get("/api/v1/search?q=botox").status_code == 429  # the same search count
    assert client.get("/services").status_code == 200  # other pages go on
    assert client.get("/api/v1/services").status_code == 200


def test_probes_metrics_and_static_files_are_never_limited(same_db_config):
    app = limited_app(
        same_db_config, RATE_LIMIT_PAGES="1 per minute", RATE_LIMIT_API="1 per minute"
    )
    client = client_at(app, "10.0.3.1")
    client.get("/services")
    assert client.get("/services").status_code == 429
    for path in ("/healthz", "/readyz", "/metrics", "/assets/site.css", "/api/v1/docs/assets/x"):
        codes = {client.get(path).status_code for _ in range(5)}
        assert 429 not in codes, (path, codes)


def test_without_limits_set_nothing_is_counted(same_db_config):
    app = limited_app(same_db_config, RATE_LIMIT_PAGES=None, RATE_LIMIT_API="")
    client = client_at(app, "10.0.4.1")
    assert {client.get("/services").status_code for _ in range(10)} == {200}
    assert {client.get("/api/v1/services").status_code for _ in range(10)} == {200}


def test_ratelimit_enabled_false_turns_the_limits_off_but_not_the_sign_in_throttle(same_db_config):
    app = limited_app(same_db_config, RATELIMIT_ENABLED=False, RATE_LIMIT_PAGES="1 per minute")
    assert app.config["RATELIMIT_ENABLED"] is False
    client = client_at(app, "10.0.4.2")
    assert {client.get("/services").status_code for _ in range(5)} == {200}
    assert {client.get("/api/v1/services").status_code for _ in range(5)} == {200}
    codes = []
    for _ in range(6):
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        data = {"email": "nobody@x.example", "password": "x" * 12, "csrf_token": token}
        codes.append(client.post("/account/login", data=data).status_code)
    assert codes == [401] * 5 + [429]


def test_the_client_is_the_address_the_trusted_proxy_reports(same_db_config):
    behind_proxy = limited_app(same_db_config, PROXY_HOPS=1, RATE_LIMIT_PAGES="1 per minute")
    proxy = client_at(behind_proxy, "127.0.0.1")
    first = {"X-Forwarded-For": "198.51.100.7"}
    assert proxy.get("/services", headers=first).status_code == 200
    assert proxy.get("/services", headers=first).status_code == 429
    # another patient behind the same proxy has their own count
    assert proxy.get("/services", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 200

    # without a trusted proxy, a client cannot pick a fresh address with the header
    direct = limited_app(same_db_config, RATE_LIMIT_PAGES="1 per minute")
    client = client_at(direct, "203.0.113.9")
    assert client.get("/services").status_code == 200
    spoofed = {"X-Forwarded-For": f"192.0.2.{uuid.uuid4().int % 250}"}
    assert client.get("/services", headers=spoofed).status_code == 429


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same subscriber's network
        ("::ffff:192.0.2.10", "192.0.2.10"),
        ("not an address", "not an address"),
    ],
)
def test_client_keys(sqlite_app, address, key):  # no database: once
    with sqlite_app.test_request_context(environ_base={"REMOTE_ADDR": address}):
        assert ratelimits.client_key() == key


def test_memory_storage_by_default_and_one_limiter_for_the_site(sqlite_app):  # no database
    limiter = sqlite_app.extensions[ratelimits.EXTENSION]["limiter"]
    assert sqlite_app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert isinstance(limiter.storage, MemoryStorage)
    with sqlite_app.app_context():
        assert ratelimits.counts() is limiter.limiter  # every throttle counts through it


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RATE_LIMIT_PAGES", "often"),
        ("RATE_LIMIT_API", "0 per minute"),
        ("RATE_LIMIT_SEARCH", "5 per fortnight"),
        ("RATELIMIT_STORAGE_URI", "http://127.0.0.1:8001/"),
        ("RATELIMIT_ENABLED", "no"),
    ],
)
def test_a_bad_limit_setting_stops_start_up_by_name(app_config, key, value):
    with pytest.raises(RuntimeError, match=key):
        create_app({**app_config, key: value})


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the Redis on 127.0.0.1:6379; its keys removed after."""
    redis = pytest.importorskip("redis")
    server = redis.Redis(socket_connect_timeout=1)
    try:
        server.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"test-ratelimits-{uuid.uuid4().hex}"
    yield prefix
    keys = list(server.scan_iter(match=f"*{prefix}*"))
    if keys:
        server.delete(*keys)
    server.close()


def test_with_redis_the_limit_is_shared_by_two_app_instances(same_db_config, redis_prefix):
    """Two apps (two gunicorn workers, or two hosts) with one Redis count one client once."""
    settings = {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}
    settings["RATELIMIT_KEY_PREFIX"] = redis_prefix
    first = limited_app(same_db_config, RATE_LIMIT_PAGES="4 per minute", **settings)
    second = limited_app(same_db_config, RATE_LIMIT_PAGES="4 per minute", **settings)
    clients = [client_at(first, "10.0.5.1"), client_at(second, "10.0.5.1")]
    answers = [clients[n % 2].get("/services").status_code for n in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]
    problem = client_at(second, "10.0.5.2")
    assert problem.get("/services").status_code == 200
    import redis

    keys = list(redis.Redis().scan_iter(match=f"*{redis_prefix}*"))
    assert keys, "the counts were not kept in Redis"


def test_a_redis_that_does_not_answer_is_never_a_500(same_db_config, caplog):
    """Decision: the counts fall back to this process's memory (a warning, once), so pages,
    the API and the sign-in throttle keep answering and keep a per-process limit."""
    pytest.importorskip("redis")
    uri = f"redis://127.0.0.1:{free_port()}/0"
    app = limited_app(same_db_config, RATELIMIT_STORAGE_URI=uri, PROPAGATE_EXCEPTIONS=False)
    client = client_at(app, "10.0.6.1")
    with caplog.at_level(logging.WARNING, logger="directory.ratelimits"):
        answers = [client.get("/services").status_code for _ in range(4)]
        api = [client.get("/api/v1/services").status_code for _ in range(3)]
    assert answers == [200, 200, 200, 429]
    assert api == [200, 200, 429]
    warnings = [r for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


def test_the_sign_in_throttle_survives_a_redis_outage(same_db_config):
    pytest.importorskip("redis")
    uri = f"redis://127.0.0.1:{free_port()}/0"
    app = limited_app(
        same_db_config, RATELIMIT_STORAGE_URI=uri, RATE_LIMIT_PAGES=None, PROPAGATE_EXCEPTIONS=False
    )
    client = client_at(app, "10.0.7.1")
    codes = []
    for _ in range(6):
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        response = client.post(
            "/account/login",
            data={"email": "nobody@x.example", "password": "x" * 12, "csrf_token": token},
        )
        codes.append(response.status_code)
    assert codes == [401] * 5 + [429]


def test_the_openapi_document_lists_the_429_on_every_operation(sqlite_app):  # no database
    document = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert operations
    for operation in operations:
        if isinstance(operation, dict) and "responses" in operation:
            assert operation["responses"]["429"] == {
                "$ref": "#/components/responses/TOO_MANY_REQUESTS"
            }
    problem = document["components"]["responses"]["TOO_MANY_REQUESTS"]["content"]
    assert "application/problem+json" in problem


ANSWERED = re.compile(r'"GET /services HTTP/1\.\d" (\d{3}) .* <(\d+)>$')


def answers_by_worker(log_path) -> dict[str, list[int]]:
    """From gunicorn's access log (its last field is the answering worker's <pid>): each
    worker's statuses for /services, in the order it answered them."""
    statuses: dict[str, list[int]] = {}
    for line in log_path.read_text().splitlines():
        if found := ANSWERED.search(line):
            statuses.setdefault(found[2], []).append(int(found[1]))
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["redis", "memory"])
def test_under_gunicorn_every_worker_counts_in_the_one_redis(app, redis_prefix, tmp_path, storage):
    """Two gunicorn worker processes, and requests until each has answered several (the
    access log says which answered). With Redis exactly the limit is answered site-wide, then
    429s, as if one process counted them all; with memory storage (the control) each worker
    lets the limit through on its own."""
    port = free_port()
    uri = "redis://127.0.0.1:6379/0" if storage == "redis" else "memory://"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIRECTORY_")},
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "DIRECTORY_SEARCH_INDEX_DIR": app.config["SEARCH_INDEX_DIR"],
        "DIRECTORY_MAIL_FILE_DIR": app.config["MAIL_FILE_DIR"],
        "DIRECTORY_INCLUDES": "[]",
        "DIRECTORY_RATELIMIT_STORAGE_URI": uri,
        "DIRECTORY_RATELIMIT_KEY_PREFIX": redis_prefix,
        "DIRECTORY_RATE_LIMIT_PAGES": "6 per hour",
        # a sliding window: a run across the hour's turn must not start a fresh count
        "DIRECTORY_RATELIMIT_STRATEGY": "moving-window",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": "-",
    }
    log_path = tmp_path / "gunicorn.log"
    server = start_gunicorn(env, log_path)
    codes: list[int] = []
    try:
        wait_for_port(port, server, log_path)
        for _ in range(400):  # a new connection each time: either worker may answer
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/services") as answer:
                    codes.append(answer.status)
            except urllib.error.HTTPError as refused:
                codes.append(refused.code)
                assert int(refused.headers["Retry-After"]) >= 1
            if len(codes) % 12 == 0:
                time.sleep(0.2)  # the access log line is written after the answer is sent
                by_worker = answers_by_worker(log_path)
                if len(by_worker) == 2 and all(len(s) > 6 for s in by_worker.values()):
                    break
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
    by_worker = answers_by_worker(log_path)
    assert len(by_worker) == 2 and all(len(s) > 6 for s in by_worker.values()), by_worker
    assert sum(len(s) for s in by_worker.values()) == len(codes)
    if storage == "redis":
        assert codes == [200] * 6 + [429] * (len(codes) - 6)
    else:
        for statuses in by_worker.values():
            assert statuses == [200] * 6 + [429] * (len(statuses) - 6), by_worker
