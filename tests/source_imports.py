"""What the project's own modules import, read from their source (no test functions here):
for the tests that keep dependencies pointing one way."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_under(folder: str) -> Iterator[tuple[str, str]]:
    """``(path relative to the repository, module name)`` for every import in the Python
    files under ``folder``; ``from a import b`` also yields ``a.b`` (b may be a module)."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield relative, node.module
                for alias in node.names:
                    yield relative, f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield relative, alias.name
