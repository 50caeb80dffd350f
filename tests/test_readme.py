"""The README's settings table, CLI reference and demo pages keep up with the code."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from config.settings import DefaultConfig
from directory.extensions import db
from tools.screenshots import demo_app

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    keys = [k for k in vars(DefaultConfig) if k.isupper()]
    missing = [k for k in keys if f"| `{k}` |" not in README]
    assert keys and not missing, f"settings missing from README.md: {missing}"


def test_every_command_group_is_in_the_cli_reference(app):
    groups = {"registry", "directory", "demo", "search", "notifications"}
    assert groups <= set(app.cli.list_commands(None))
    for group in groups:
        command = app.cli.get_command(None, group)
        for name in command.list_commands(None):
            pattern = rf"`(flask {group} )?{re.escape(name)}\b"
            assert re.search(pattern, README), f"flask {group} {name} is not in the README"


DEMO_PAGE = re.compile(r"^- (?P<label>[^:]+): <http://127\.0\.0\.1:8000(?P<path>/[^>]*)>$", re.M)
EXPECTED_TONE = {
    "a verified practitioner": "verified",
    "a suspended practitioner": "adverse",
    "a practitioner not verified recently (stale)": "stale",
}


def test_the_demo_pages_the_readme_lists_show_what_it_says(tmp_path):
    """Each link answers over `flask demo load`'s data, and each practitioner's badge is the
    one the README promises."""
    pages = [(m["label"], m["path"]) for m in DEMO_PAGE.finditer(README)]
    assert len(pages) >= 7 and set(EXPECTED_TONE) <= {label for label, _ in pages}
    app = demo_app(tmp_path)  # what `make run` serves, as the screenshots take it
    client = app.test_client()
    for label, path in pages:
        response = client.get(path)
        expected = 404 if label.startswith("a number the directory has never checked") else 200
        assert response.status_code == expected, (label, path)
        if label in EXPECTED_TONE:
            tone = re.search(r'data-tone="(\w+)"', response.data.decode()).group(1)
            assert tone == EXPECTED_TONE[label], (label, path)
        if urlsplit(path).path == "/search":
            assert 'class="card' in response.data.decode(), "the demo search finds no one"
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("target", ["run", "test"])
def test_make_run_installs_only_the_runtime_dependencies(target):
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    recipe = re.search(rf"^{target}: (.*)$", makefile, re.M).group(1)
    stamp = "$(RUN_STAMP)" if target == "run" else "$(TEST_STAMP)"
    assert stamp in recipe.split(), recipe
    run_install = re.search(r"^\$\(RUN_STAMP\):.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "-e ." in run_install and "[test]" not in run_install
