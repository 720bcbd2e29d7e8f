"""Dependencies point one way: escalations -> reviews -> workbench (DESIGN §2)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BELOW = {"workbench": {"reviews", "escalations"}, "reviews": {"escalations"}, "escalations": set()}
# The project's URL conf puts the apps together.
COMPOSERS = {"workbench/urls.py"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(BELOW))
def test_an_app_imports_no_app_above_it(app):
    wrong = {}
    for path in sorted((ROOT / app).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in COMPOSERS:
            continue
        above = imported(path) & BELOW[app]
        if above:
            wrong[relative] = sorted(above)
    assert wrong == {}
