"""The favicon's raster forms from directory/web/static/favicon.svg, drawn by Debian's Chromium:
icon.png (512 px: Open Graph image and apple-touch-icon) and favicon.ico (a 32 px PNG inside
an ICO container, for browsers that ask for /favicon.ico). Re-run after editing the SVG:

    .venv/bin/python tools/icons.py
"""

from __future__ import annotations

import struct
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "directory" / "web" / "static"
CHROMIUM = "/usr/bin/chromium"


def render(svg: str, sizes: tuple[int, ...]) -> dict[int, bytes]:
    from playwright.sync_api import sync_playwright

    pictures: dict[int, bytes] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for size in sizes:
            page = browser.new_page(viewport={"width": size, "height": size})
            sized = svg.replace("<svg ", f'<svg width="{size}" height="{size}" ', 1)
            page.set_content(f"<html><body style='margin:0'>{sized}</body></html>")
            clip = {"x": 0, "y": 0, "width": size, "height": size}
            pictures[size] = page.screenshot(omit_background=True, clip=clip)
        browser.close()
    return pictures


def ico(png: bytes, size: int) -> bytes:
    """One PNG image in an ICO container (ICONDIR, one ICONDIRENTRY, the PNG)."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), 22)
    return header + entry + png


def main() -> int:
    pictures = render((STATIC / "favicon.svg").read_text(), (32, 512))
    (STATIC / "icon.png").write_bytes(pictures[512])
    (STATIC / "favicon.ico").write_bytes(ico(pictures[32], 32))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
