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


def modules_imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


# The web plumbing every app shares lives in workbench.web; an app's views and
# forms are its own.
WEB_MODULES = ("views", "forms")


@pytest.mark.parametrize("app", sorted(BELOW))
def test_an_app_imports_no_other_apps_views_or_forms(app):
    others = [other for other in BELOW if other != app]
    wrong = {}
    for path in sorted((ROOT / app).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in COMPOSERS:
            continue
        borrowed = {
            name
            for name in modules_imported(path)
            for other in others
            for module in WEB_MODULES
            if name == f"{other}.{module}" or name.startswith(f"{other}.{module}.")
        }
        if borrowed:
            wrong[relative] = sorted(borrowed)
    assert wrong == {}


def test_the_layer_rule_finds_a_borrowed_view(tmp_path):
    borrowing = tmp_path / "views.py"
    borrowing.write_text("from reviews.views import redirect_to\nfrom reviews import forms\n")
    assert {"reviews.views", "reviews.forms"} <= modules_imported(borrowing)
