"""Default settings. Every key is overridable with a ``DIRECTORY_`` environment variable."""

from __future__ import annotations


class DefaultConfig:
    # --- Flask / storage -------------------------------------------------------------
    SECRET_KEY = "dev-only-not-secret"  # Flask's signing key: set your own in production
    # "production" refuses to start with a missing or development SECRET_KEY, with debug on,
    # or with neither PUBLIC_BASE_URL nor TRUSTED_HOSTS set (directory/deployment.py).
    ENV = "development"
    # Proxies in front that set X-Forwarded-For/-Proto/-Host/-Port (deploy/nginx.conf: 1).
    # 0 trusts none of these headers: right when clients reach gunicorn directly.
    PROXY_HOPS = 0
    # None means: a SQLite file ``directory.sqlite3`` under Flask's instance folder.
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}  # passed to SQLAlchemy's create_engine (JSON in env)
    # None means: ``search-index/`` under Flask's instance folder.
    SEARCH_INDEX_DIR: str | None = None
    # Packages that add to the app at start-up, each through its ``init_app(app)`` (as
    # Pyramid's ``config.include``): ``importers`` brings the register sources and the
    # ``flask registry import|verify|recheck`` commands. ``directory`` never imports them.
    INCLUDES: tuple[str, ...] = ("importers",)

    # --- Search (docs/search.md) -----------------------------------------------------
    # The search engine behind directory.search.get_search_backend() and get_index_keeper():
    # "whoosh", or "null" (finds nothing, keeps nothing: for apps and tests without search).
    SEARCH_BACKEND = "whoosh"
    # Apply the search outbox right after each commit that wrote to it (never waits for the
    # index lock: a busy index leaves the rows for the next commit or `flask search sync`).
    SEARCH_APPLY_AFTER_COMMIT = True
    # Outbox ids may commit out of order (PostgreSQL); rows younger than this are re-read on
    # every pass. Must exceed the longest write transaction.
    SEARCH_OUTBOX_WINDOW = "1h"
    # `flask search sync` deletes outbox rows older than this (all but the newest of them);
    # an index further behind than that (a host down for longer) rebuilds itself: the host
    # is not ready and its searches answer 503 meanwhile.
    SEARCH_OUTBOX_RETENTION = "7d"
    # A search on a host whose index is missing, or behind the retention, starts building
    # one in the background and waits this long for it; then it answers 503 with
    # Retry-After (and /readyz 503) until the index is there.
    SEARCH_BUILD_WAIT = "10s"
    # After a lock collision on commit, retry once this many seconds later (in-process).
    SEARCH_RETRY_DELAY = 1.0
    # Index generations kept on disk after a reindex (the current one and the one before).
    SEARCH_KEEP_GENERATIONS = 2
    # Cached plans, match sets and result pages per index generation and process (0: none);
    # match sets are also bounded by SEARCH_SCORE_CACHE_DOCS documents.
    SEARCH_CACHE_SIZE = 2048
    # Seconds the service and city names are reused before re-reading them (the "did you
    # mean" words are read once per index segment).
    SEARCH_VOCABULARY_TTL = 30
    # A worker looks for index changes made by other processes at most this often (seconds);
    # its own changes it sees at once.
    SEARCH_REFRESH_SECONDS = 1.0
    # Free-word match lists (and their orders) kept per index segment, per generation and
    # per process, counted in documents; match sets are bounded by it separately.
    SEARCH_SCORE_CACHE_DOCS = 100_000

    # --- The register ----------------------------------------------------------------
    # The public iRegister report endpoint. Only an operator's explicit command calls it.
    HPCSA_URL = "https://hpcsaonline.custhelp.com/cc/ReportController/getDataFromRnow"
    # Where a patient can see a registration at the source; {number} is the padded form.
    HPCSA_PUBLIC_RECORD_URL = (
        "https://hpcsaonline.custhelp.com/app/iregister_details/reg_number/{number}"
    )
    # The register's own public search page, named under every page's header ("not run by
    # the HPCSA") so that a patient can always go to the source.
    HPCSA_REGISTER_SEARCH_URL = "https://hpcsaonline.custhelp.com/app/i_reg_form"
    HPCSA_TIMEOUT = 15.0  # seconds, for connect, read and write alike; a look-up 2x at most
    # An answer larger than this (bytes) is refused as an error: one number's is ~1 KB.
    HPCSA_MAX_RESPONSE_BYTES = 1_000_000
    # Named in the User-Agent so the register's operators can reach us.
    CONTACT_URL = "https://example.org/hpcsa-directory/contact"

    # --- Asking the register politely (importers/politeness/, docs/recheck.md) ---------
    # Requests per second to the register in total, from every process and host at once
    # (`verify`, every `recheck` run): never more in any one-second window.
    HPCSA_MAX_RATE = 2.0
    # Where that shared budget lives. None: the database (a `register_budget` row, seen by
    # every host using it); "redis://127.0.0.1:6379/0": Redis; "memory:": this process only.
    REGISTER_BUDGET_URL: str | None = None
    # After a 429 the shared rate is halved, for every process, down to this floor...
    HPCSA_RATE_FLOOR = 0.1
    # ...and climbs back linearly: from zero to HPCSA_MAX_RATE in this long without a 429.
    HPCSA_RATE_RECOVERY = "60s"
    # Seconds of margin added to each one-second window, so that jitter (up to this much)
    # between booking a start and the request reaching the register never lets it see more
    # than HPCSA_MAX_RATE requests in one second. A busy host spreads more: see
    # docs/recheck.md before relying on the default.
    HPCSA_RATE_WINDOW_MARGIN = 0.25
    # Attempts per look-up for transient failures (timeouts, 5xx, 429, unreadable bodies).
    HPCSA_RETRY_ATTEMPTS = 4
    # Backoff before retry n: uniform(0, min(MAX_DELAY, BASE * 2**(n-1))) seconds.
    HPCSA_RETRY_BASE = 0.5
    HPCSA_RETRY_MAX_DELAY = "30s"  # the longest single backoff wait
    # A Retry-After up to this long pauses every request, everywhere, and is waited out; a
    # longer one is not: the look-up counts as failed (and `verify` stops).
    HPCSA_RETRY_AFTER_MAX = "5m"
    # `flask registry verify`'s own pace (--rate), within HPCSA_MAX_RATE (requests per second).
    VERIFY_RATE = 1.0

    # --- What the system believes ----------------------------------------------------
    # A not-found for a registration the register had confirmed takes effect only when
    # a second not-found at least this long after the first confirms it (seconds or "1h").
    NOT_FOUND_CONFIRM_AFTER = "1h"
    # "Verified" only while the register confirmed an active status this recently.
    VERIFICATION_MAX_AGE = "30d"

    # --- When each registration is next checked (see directory/registry/policy.py) ----
    RECHECK_ACTIVE_EVERY = "7d"  # active registrations, with the jitter below
    RECHECK_JITTER = 0.2  # +-20 % so the load spreads evenly
    RECHECK_RECENTLY_CHANGED_EVERY = "1d"  # a registration whose status changed...
    RECHECK_RECENTLY_CHANGED_FOR = "30d"  # ...for this long after the change
    RECHECK_INACTIVE_EVERY = "7d"  # suspended, erased, inactive, deceased, unknown
    RECHECK_NOT_FOUND_EVERY = "30d"  # numbers the register does not know
    RECHECK_ERROR_BACKOFF_FIRST = "15m"  # after a failed look-up, doubling per failure...
    RECHECK_ERROR_BACKOFF_MAX = "1d"  # ...up to this

    # --- `flask registry recheck` (importers/recheck/) ----------------------------------
    # Look-ups in flight at once (--concurrency); also the HTTP connection pool's size.
    RECHECK_CONCURRENCY = 4
    # One run's own pace (--rate), within HPCSA_MAX_RATE, which all runs share.
    RECHECK_RATE = 2.0
    # The highest --concurrency / --rate an operator may ask for: the register is not ours.
    RECHECK_CONCURRENCY_LIMIT = 32
    RECHECK_RATE_LIMIT = 50.0  # the highest --rate accepted
    # How long a claimed registration stays reserved for one run (renewed while it runs);
    # a crashed run's claims become free again after this.
    RECHECK_LEASE = "10m"
    # Registrations claimed per database round trip (small: others' runs share the work).
    RECHECK_CLAIM_BATCH = 16
    # Circuit breaker: this many failed requests in a row open it...
    RECHECK_BREAKER_CONSECUTIVE = 20
    # ...as does a failure share above RECHECK_BREAKER_RATIO over the last WINDOW requests.
    RECHECK_BREAKER_WINDOW = 50
    RECHECK_BREAKER_RATIO = 0.5  # failure share over the window that opens the breaker
    # How often a run without a terminal logs a progress line.
    RECHECK_PROGRESS_EVERY = "10s"

    # --- Watching it (docs/deploy.md) ----------------------------------------------------
    # "json": one JSON object per log line and one line per request (request id, duration);
    # "text": plain lines. Neither ever contains a secret or a query string.
    LOG_FORMAT = "text"
    # Serve Prometheus metrics at /metrics (allow only the monitoring system to reach it).
    METRICS_ENABLED = False
    # /readyz answers 503 when the database or the search index take longer than this
    # (seconds) to answer.
    READY_TIMEOUT = 2.0

    # --- The JSON API (/api/v1) --------------------------------------------------------
    # Cache-Control max-age (seconds) on successful public GETs; each also has a strong ETag.
    API_CACHE_MAX_AGE = 60

    # --- Public pages (docs/pages.md) ----------------------------------------------------
    # Cache-Control max-age (seconds) of public pages without a badge (home, treatments, the
    # check form); pages with a badge are revalidated every time (no-cache and an ETag), a
    # page with a session is private; fingerprinted assets are cached for a year.
    PAGE_CACHE_MAX_AGE = 60
    # URLs per file of /sitemap.xml's sitemaps (the sitemap protocol allows at most 50,000).
    SITEMAP_URLS_PER_FILE = 50_000

    # --- Notifications of status changes and the change feed (docs/notifications.md) ---
    # The public address of this site, for links in notifications and feeds (no trailing
    # slash). None: the request's own host in pages and feeds, http://127.0.0.1:8000 in jobs.
    PUBLIC_BASE_URL: str | None = None
    # Every status change is POSTed here as signed JSON. None: no webhook.
    NOTIFY_WEBHOOK_URL: str | None = None
    # Shared secret for the X-Directory-Signature HMAC-SHA256; required with the URL.
    NOTIFY_WEBHOOK_SECRET: str | None = None
    NOTIFY_WEBHOOK_TIMEOUT = 10.0  # seconds, per POST
    # Failed sends are retried after NOTIFY_RETRY_FIRST, doubling up to NOTIFY_RETRY_MAX
    # (with jitter; never sooner than a receiver's Retry-After), and given up after
    # NOTIFY_MAX_ATTEMPTS attempts (`flask notifications retry` queues them again).
    NOTIFY_RETRY_FIRST = "1m"
    NOTIFY_RETRY_MAX = "6h"  # the longest wait between two attempts
    NOTIFY_MAX_ATTEMPTS = 12  # with the defaults: some 10 to 20 hours of retrying
    # How long a sender holds the rows it claimed; a crashed sender's rows are free after it.
    NOTIFY_LEASE = "5m"
    # Emails to the clinics listing a practitioner: "file" writes RFC 5322 messages under
    # MAIL_FILE_DIR (no mail server needed), "smtp" sends them, "none" sends no email.
    MAIL_TRANSPORT = "file"
    MAIL_FILE_DIR: str | None = None  # None: mail/ under Flask's instance folder
    MAIL_FROM = "HPCSA directory <no-reply@directory.invalid>"  # the sender of every email
    MAIL_SMTP_HOST = "localhost"  # with MAIL_TRANSPORT = "smtp"
    MAIL_SMTP_PORT = 587  # the SMTP server's port
    MAIL_SMTP_USER: str | None = None  # SMTP login (none: no login)
    MAIL_SMTP_PASSWORD: str | None = None  # SMTP password
    MAIL_SMTP_STARTTLS = True  # upgrade the SMTP connection with STARTTLS
    MAIL_SMTP_TIMEOUT = 10.0  # seconds

    # --- Clinic accounts and site security (docs/clinics.md) ---------------------------
    # Host names this site answers to (Flask's TRUSTED_HOSTS; a list, JSON in env); a
    # request for any other Host is refused (400). None: PUBLIC_BASE_URL's host, which then
    # fixes every absolute URL whatever a client sends; with neither, loopback names only.
    TRUSTED_HOSTS: list[str] | None = None
    # Send the session cookie only over HTTPS even when a request looks like plain HTTP
    # (e.g. behind a proxy that terminates TLS); it is Secure over HTTPS regardless.
    SESSION_COOKIE_SECURE = False
    SESSION_LIFETIME = "12h"  # how long a sign-in lasts without activity
    # Where the per-client rate limits, the sign-in throttle and the public pages'
    # throttles (reports, live checks) keep their counts:
    # "memory://" (each process counts alone) or a Redis URL such as
    # "redis://127.0.0.1:6379/0" (shared by every worker and host). docs/deploy.md.
    RATELIMIT_STORAGE_URI = "memory://"
    # Put before every key this site writes to that storage (several sites, one Redis).
    RATELIMIT_KEY_PREFIX = "hpcsa-directory"
    # Requests one client address (an IPv6 /64) may make: to the pages, to the API
    # (everything under /api/), and searches (the results page and /api/v1/search, also
    # counted as a page or an API request). Several limits: "10 per second; 300 per minute".
    # null: no limit. Over a limit: 429 with Retry-After. /healthz, /readyz, /metrics and
    # static files count against nothing.
    # false: no per-client limit at all (a load test from one address); the sign-in
    # throttle (LOGIN_LIMIT_*) counts on.
    RATELIMIT_ENABLED = True
    RATE_LIMIT_PAGES: str | None = "300 per minute"
    RATE_LIMIT_API: str | None = "300 per minute"
    RATE_LIMIT_SEARCH: str | None = "120 per minute"
    LOGIN_LIMIT_PER_ACCOUNT = "5 per 15 minutes"  # sign-in attempts for one email address
    LOGIN_LIMIT_PER_ADDRESS = "20 per 15 minutes"  # sign-in attempts from one client address
    # Patients' actions on the public pages (docs/pages.md), counted in the same storage:
    REPORT_LIMIT_PER_CLIENT = "5 per hour"  # reports of concern from one client address
    # ...and from every client together: a flood from many addresses stores no more than this
    REPORT_LIMIT_SITE = "200 per hour"
    # "Check this number at the register now": per client address, and for the whole site
    # (every client together), on top of the register budget every look-up shares.
    LIVE_CHECK_LIMIT_PER_CLIENT = "10 per hour"
    LIVE_CHECK_LIMIT_SITE = "300 per hour"
    # How long the links sent by email stay valid (each works once).
    CLAIM_LINK_MAX_AGE = "2d"  # "Is this your clinic?": the link to the clinic's address
    PASSWORD_RESET_MAX_AGE = "1h"
    INVITATION_MAX_AGE = "7d"  # a clinic admin's invitation to a member of staff
    # How closely the name a clinic types must match the register's spelling (rapidfuzz
    # token-set ratio, 0-100); below it, a new listing waits for a site admin.
    LISTING_NAME_MATCH = 85
    # How many registration numbers one clinic may ask the register about (adding
    # practitioners), on top of the register budget every caller shares.
    CLINIC_LOOKUP_LIMIT = "30 per hour"


def duration_settings() -> list[str]:
    """Every setting whose default is a duration (``"15m"``, ``"30d"``...)."""
    from directory.util.durations import parse_duration

    keys = []
    for key in dir(DefaultConfig):
        default = getattr(DefaultConfig, key)
        if not key.isupper() or not isinstance(default, str):
            continue
        try:
            parse_duration(default)
        except ValueError:
            continue
        keys.append(key)
    return keys


def check_durations(config) -> None:
    """Raise ValueError naming the first duration setting that is not a duration."""
    from directory.util.durations import parse_duration

    for key in duration_settings():
        try:
            parse_duration(config.get(key))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
