"""Default settings. Every key is overridable with a ``DIRECTORY_`` environment variable."""

from __future__ import annotations


class DefaultConfig:
    # --- Flask / storage -------------------------------------------------------------
    SECRET_KEY = "dev-only-not-secret"
    # None means: a SQLite file ``directory.sqlite3`` under Flask's instance folder.
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # None means: ``search-index/`` under Flask's instance folder.
    SEARCH_INDEX_DIR: str | None = None

    # --- The register ----------------------------------------------------------------
    # The public iRegister report endpoint. Only an operator's explicit command calls it.
    HPCSA_URL = "https://hpcsaonline.custhelp.com/cc/ReportController/getDataFromRnow"
    # Where a patient can see a registration at the source; {number} is the padded form.
    HPCSA_PUBLIC_RECORD_URL = (
        "https://hpcsaonline.custhelp.com/app/iregister_details/reg_number/{number}"
    )
    HPCSA_TIMEOUT = 15.0  # seconds, for connect, read and write alike
    # Named in the User-Agent so the register's operators can reach us.
    CONTACT_URL = "https://example.org/hpcsa-directory/contact"
    # Politeness for the one-off `flask registry verify --from` runs (requests per second).
    VERIFY_RATE = 1.0

    # --- What the system believes ----------------------------------------------------
    # A not-found for a registration the register had confirmed takes effect only when
    # a second not-found at least this long after the first confirms it (seconds or "1h").
    NOT_FOUND_CONFIRM_AFTER = "1h"
    # "Verified" only while the register confirmed an active status this recently.
    VERIFICATION_MAX_AGE = "30d"

    # --- When each registration is next checked (see directory/registry/schedule.py) --
    RECHECK_ACTIVE_EVERY = "7d"
    RECHECK_JITTER = 0.2  # +-20 % so the load spreads evenly
    RECHECK_RECENTLY_CHANGED_EVERY = "1d"
    RECHECK_RECENTLY_CHANGED_FOR = "30d"
    RECHECK_INACTIVE_EVERY = "7d"  # suspended, erased, inactive, deceased, unknown
    RECHECK_NOT_FOUND_EVERY = "30d"
    RECHECK_ERROR_BACKOFF_FIRST = "15m"
    RECHECK_ERROR_BACKOFF_MAX = "1d"
