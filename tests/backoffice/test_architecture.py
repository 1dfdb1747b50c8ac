"""Dependencies point one way, like floors: backoffice ← procedures ← specimens ← lab.

Read from the source with `ast`, so an import inside a function or under TYPE_CHECKING counts too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOORS = ["backoffice", "procedures", "specimens", "lab"]
DOMAIN_APPS = {"procedures", "specimens", "lab"}
# The only parts of backoffice/ that sit above the domain apps: the pages that compose them, the FHIR
# API (which builds its resources from every app's rows) and the developer tools (benchmark, demo data).
# The command seed_demo is a thin entry point into devtools.
TOP_FLOOR = ("backoffice/pages", "backoffice/fhir", "backoffice/devtools")


def imports_in(source: str, *, package: str) -> set[str]:
    """Every module some source imports, relative imports resolved against its package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module:
                found.add(module)
            # `from backoffice import hooks` imports backoffice.hooks.
            found.update(f"{module}.{alias.name}".lstrip(".") for alias in node.names)
    return found


def imported_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imports_in(path.read_text(), package=package)


def top_level_apps(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def python_files(folder: str) -> list[Path]:
    return sorted(path for path in (ROOT / folder).rglob("*.py") if "migrations" not in path.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def above(app: str) -> set[str]:
    return set(FLOORS[FLOORS.index(app) + 1 :])


CORE_FILES = [p for p in python_files("backoffice") if not rel(p).startswith(TOP_FLOOR)]


@pytest.mark.parametrize("path", CORE_FILES, ids=rel)
def test_nothing_in_backoffice_below_the_top_floor_imports_a_domain_app(path: Path) -> None:
    assert not top_level_apps(path) & DOMAIN_APPS


@pytest.mark.parametrize("app", ["procedures", "specimens", "lab"])
def test_each_domain_app_imports_only_the_floors_below_it(app: str) -> None:
    offending = {rel(path): top_level_apps(path) & above(app) for path in python_files(app)}
    assert not {path: apps for path, apps in offending.items() if apps}


@pytest.mark.parametrize("app", ["procedures", "specimens", "lab"])
def test_no_domain_app_imports_the_top_floor(app: str) -> None:
    top = {name.replace("/", ".") for name in TOP_FLOOR}
    offending = {
        rel(path): {m for m in imported_modules(path) if m.startswith(tuple(top))} for path in python_files(app)
    }
    assert not {path: modules for path, modules in offending.items() if modules}


def test_the_rules_check_real_files() -> None:
    # A renamed or moved folder must not make the rules above pass by checking nothing.
    core = {rel(p) for p in CORE_FILES}
    for name in ("models", "services", "selectors", "workflow", "transitions", "hooks", "roles", "tasks", "admin"):
        assert f"backoffice/{name}.py" in core
    for folder in ("accounts", "audit"):
        assert any(path.startswith(f"backoffice/{folder}/") for path in core), folder
    assert not any(path.startswith(TOP_FLOOR) for path in core)
    assert any(rel(p).startswith("backoffice/pages/") for p in python_files("backoffice"))
    for app in ("procedures", "specimens", "lab"):
        assert python_files(app), app


def test_backoffice_templates_follow_its_folders() -> None:
    folders = {
        p.relative_to(ROOT / "templates" / "backoffice").parts[0]
        for p in (ROOT / "templates" / "backoffice").rglob("*.html")
    }
    assert folders <= {"pages", "accounts", "audit"}


def test_the_parser_sees_real_imports() -> None:
    services = imported_modules(ROOT / "backoffice" / "services.py")
    assert {"backoffice.models", "backoffice.hooks", "backoffice.transitions", "backoffice.text"} <= services
    # hooks.py names Handoff only under TYPE_CHECKING; ast still sees it.
    assert "backoffice.models" in imported_modules(ROOT / "backoffice" / "hooks.py")
    assert "backoffice" in top_level_apps(ROOT / "procedures" / "models.py")
    assert DOMAIN_APPS & top_level_apps(ROOT / "backoffice" / "pages" / "views.py")


@pytest.mark.parametrize(
    ("source", "package", "apps"),
    [
        ("def f():\n    from lab.models import TestOrder\n", "backoffice", {"lab"}),
        ("import procedures.services as ps\n", "backoffice", {"procedures"}),
        ("from .. import lab\n", "specimens", {"lab"}),
        ("from ..lab.models import TestOrder\n", "specimens", {"lab"}),
        ("from . import selectors\n", "procedures", {"procedures"}),
        ("if TYPE_CHECKING:\n    from specimens.models import Specimen\n", "procedures", {"specimens"}),
    ],
)
def test_the_parser_catches_every_kind_of_import(source: str, package: str, apps: set[str]) -> None:
    assert {name.split(".")[0] for name in imports_in(source, package=package)} == apps
