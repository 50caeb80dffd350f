"""The README's settings table and CLI reference keep up with the code."""

import re
from pathlib import Path

from config.settings import DefaultConfig

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
