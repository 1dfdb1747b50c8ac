"""README says what is here (issue 14, point 18): every page and action, every setting, make run's knobs.

"What is here" names each URL outside Django admin, in full (`/procedures/<uuid>/`) or as its ending
after the page it belongs to (`…/start/`, `…/<uuid>/retry/`); the configuration table names every
variable the settings read through backoffice.env.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
WHAT_IS_HERE = README.split("\n## What is here\n", 1)[1].split("\n## ", 1)[0]
CONFIGURATION = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
ENV_READERS = {"env_str", "env_bool", "env_int", "env_list"}


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":
                yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield "/" + prefix + str(pattern.pattern)


def _as_written(route: str) -> str:
    """`lots/<int:pk>/run/` as the README writes it: `lots/<id>/run/`."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "<id>" if m[1] == "pk" else f"<{m[1]}>", route)


def _documented(path: str) -> bool:
    endings = [path[i:] for i, char in enumerate(path) if char == "/" and path[i:] != "/"]
    return path in WHAT_IS_HERE or any(f"…{ending}" in WHAT_IS_HERE for ending in endings)


def test_every_page_and_action_is_in_what_is_here() -> None:
    missing = [path for path in map(_as_written, _routes(get_resolver().url_patterns)) if not _documented(path)]
    assert missing == []


def test_every_setting_read_from_the_environment_is_in_the_configuration_table() -> None:
    names = set()
    for source in (ROOT / "backoffice").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ENV_READERS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.add(first.value)
    assert {"SESSION_IDLE_TIMEOUT_MINUTES", "DATABASE_URL"} <= names  # the walk finds them
    assert sorted(names - _configured()) == []


def _configured() -> set[str]:
    """The variables the table names, `QUEUE_OVERDUE_MINUTES_ROUTINE` / `_STAT` read as both."""
    named: set[str] = set()
    for line in CONFIGURATION.splitlines():
        previous = ""
        for token in re.findall(r"`([A-Z0-9_]+)`", line):
            if token.startswith("_") and previous:
                token = previous.rsplit("_", 1)[0] + token
            named.add(token)
            previous = token
    return named


def test_make_run_s_host_and_ports_are_explained() -> None:
    makefile = (ROOT / "Makefile").read_text()
    knobs = re.findall(r"^(\w+) \?= ", makefile, flags=re.MULTILINE)
    assert {"HOST", "PORT", "HL7_PORT"} <= set(knobs)
    assert [knob for knob in knobs if f"`{knob}`" not in README and f"{knob}=" not in README] == []


def test_the_admin_s_first_sign_in_sets_up_the_second_factor() -> None:
    admin_row = next(line for line in WHAT_IS_HERE.splitlines() if line.startswith("| `/admin/` |"))
    assert "`/login/otp/setup/`" in admin_row
