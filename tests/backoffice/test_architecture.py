"""Dependencies point one way, like floors: backoffice ← procedures ← specimens ← lab.

Read from the source with `ast`, so an import inside a function or under TYPE_CHECKING counts too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = ["models", "services", "workflow", "hooks", "roles", "selectors"]
DOMAIN_MODULES = ["models", "services", "selectors"]
FLOORS = ["backoffice", "procedures", "specimens", "lab"]


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


def existing(app: str, modules: list[str]) -> list[Path]:
    return [ROOT / app / f"{module}.py" for module in modules if (ROOT / app / f"{module}.py").exists()]


def app_files(app: str) -> list[Path]:
    return sorted(path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts)


def above(app: str) -> set[str]:
    return set(FLOORS[FLOORS.index(app) + 1 :])


@pytest.mark.parametrize("path", existing("backoffice", CORE_MODULES), ids=lambda p: p.name)
def test_the_core_never_imports_a_domain_app(path: Path) -> None:
    assert not top_level_apps(path) & above("backoffice")


@pytest.mark.parametrize("path", existing("procedures", DOMAIN_MODULES), ids=lambda p: p.name)
def test_procedures_never_import_specimens_or_lab(path: Path) -> None:
    assert not top_level_apps(path) & above("procedures")


@pytest.mark.parametrize("path", app_files("specimens"), ids=lambda p: str(p.relative_to(ROOT)))
def test_specimens_never_import_lab(path: Path) -> None:
    assert "lab" not in top_level_apps(path)


def test_the_core_modules_the_rule_names_are_there() -> None:
    # A renamed or moved file must not make the rule above pass by checking nothing.
    names = {path.stem for path in existing("backoffice", CORE_MODULES)}
    assert {"models", "services", "workflow", "hooks", "roles"} <= names
    assert {path.stem for path in existing("procedures", DOMAIN_MODULES)} == {"models", "services", "selectors"}
    assert app_files("specimens")


def test_the_parser_sees_real_imports() -> None:
    services = imported_modules(ROOT / "backoffice" / "services.py")
    assert {"backoffice.models", "backoffice.hooks", "backoffice.workflow", "unicodedata"} <= services
    # hooks.py names Handoff only under TYPE_CHECKING; ast still sees it.
    assert "backoffice.models" in imported_modules(ROOT / "backoffice" / "hooks.py")
    assert "backoffice" in top_level_apps(ROOT / "procedures" / "models.py")


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
