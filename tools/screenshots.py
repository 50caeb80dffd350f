"""Screenshots of the main pages, over the fictional demo data, at phone (390x844) and desktop
(1280x800) sizes, into docs/screenshots/ (embedded in docs/pages.md).

    make screenshots        # or: .venv/bin/python tools/screenshots.py [--out DIR]

One command, nothing else to start: the demo data is loaded into a temporary SQLite database,
the app is served on a free loopback port, and Debian's Chromium (/usr/bin/chromium, never a
downloaded browser) takes the pictures of the first screen of each page, as a patient first
sees it. Nothing leaves the machine. Re-run it whenever a page changes, and commit the PNGs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from directory import create_app  # noqa: E402
from directory.extensions import db  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
SIZES = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
# The pages a patient meets first, with demo data that shows each state (README's demo pages).
PAGES = {
    "home": "/",
    "results": "/search?q=mesotherapy&where=Johannesburg",
    "practitioner-verified": "/practitioners/MP0900572",
    "practitioner-suspended": "/practitioners/MP0946395",
    "practitioner-stale": "/practitioners/MP0930466",
    "clinic": "/clinics/placeholder-park-skin-laser-centre-johannesburg",
    "treatment": "/services/mesotherapy",
    "check": "/check?number=MP0999998",
}


def demo_app(folder: Path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'demo.sqlite3'}",
            "SEARCH_INDEX_DIR": str(folder / "search-index"),
            "MAIL_FILE_DIR": str(folder / "mail"),
            "HPCSA_URL": "http://127.0.0.1:9/never-called",
        }
    )
    with app.app_context():
        db.create_all()
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    if result.exit_code != 0:
        raise SystemExit(f"flask demo load failed:\n{result.output}")
    return app


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="screenshots-") as folder:
        app = demo_app(Path(folder))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
                )
                for size, options in SIZES.items():
                    context = browser.new_context(**options)
                    page = context.new_page()
                    for name, path in PAGES.items():
                        page.goto(base + path)
                        target = out / f"{name}-{size}.png"
                        page.screenshot(path=str(target))
                        written.append(target)
                    context.close()
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=10)
            with app.app_context():
                db.engine.dispose()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    if not CHROMIUM.exists():
        print("Debian's Chromium is not at /usr/bin/chromium: `make system-deps`", file=sys.stderr)
        return 1
    for path in take(args.out):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
