"""Role fixtures make permission tests one line each."""

import pytest

from backoffice import roles
from backoffice.models import User
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory, UserFactory

PASSWORD = "correct-horse-battery-staple"


def _is_transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    return bool(marker and marker.kwargs.get("transaction")) or "live_server" in fixtures


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    """Collect tests only from tests/: a name a test module imports is never a test itself.

    Production code may well say "test": lab.models.TestDefinition, lab.services.test_orders_add.
    Without this, a test module that imports them would collect them as tests.
    """
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and not module.startswith("tests.") and (callable(obj) or isinstance(obj, type)):
        return []
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run transactional tests (threads, the live server) after all others.

    Their teardown flushes every table, including the roles and catalogs that migrations
    seeded; tests that run after a flush inside one rolled-back transaction would miss them.
    pytest-django orders tests this way too, but other plugins reorder after it.
    """
    items.sort(key=_is_transactional)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> None:
    """pytest-django's database setup, with the migrated data kept where every test finds it.

    Serialized rollback reloads the roles and catalogs after a transactional test's flush from a copy
    that Django keeps on the connection object. Once Playwright's event loop runs in this thread, the
    test code gets a fresh connection object (connections are per context), which has no copy: the
    second browser test then found no roles. Keeping the copy on the connection class reaches both.
    """
    from django.db import connections

    for alias in connections:
        contents = getattr(connections[alias], "_test_serialized_contents", None)
        if contents is not None:
            type(connections[alias])._test_serialized_contents = contents


@pytest.fixture(autouse=True)
def _empty_fragment_cache() -> None:
    """Each test starts with nothing cached (rendered rows, station choices): no test sees another's."""
    from django.core.cache import caches

    caches["fragments"].clear()
    caches["default"].clear()


@pytest.fixture
def medical_assistant(db: None) -> User:
    return UserFactory(username="ma", first_name="Maria", last_name="Alvarez", role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def other_ma(db: None) -> User:
    return UserFactory(username="ma2", first_name="Jordan", last_name="Lee", role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def supervisor(db: None) -> User:
    return UserFactory(username="sup", first_name="Sam", last_name="Okafor", role=roles.ROLE_SUPERVISOR)


@pytest.fixture
def clinician(db: None) -> User:
    return UserFactory(username="doc", first_name="Priya", last_name="Shah", role=roles.ROLE_CLINICIAN)


@pytest.fixture
def lab_tech(db: None) -> User:
    return UserFactory(username="lab", first_name="Lee", last_name="Chen", role=roles.ROLE_LAB_TECH)


@pytest.fixture
def admin_user(db: None) -> User:
    return UserFactory(username="admin", is_staff=True, is_superuser=False, role=roles.ROLE_ADMIN)


@pytest.fixture
def auditor(db: None) -> User:
    return UserFactory(username="audit", first_name="Harriet", last_name="Nkemelu", role=roles.ROLE_AUDITOR)


@pytest.fixture
def outsider(db: None) -> User:
    """Logged in, but holding no role."""
    return UserFactory(username="outsider")


@pytest.fixture
def patient(db: None):  # type: ignore[no-untyped-def]
    return PatientFactory(
        mrn="M100001", given_name="Rosa", family_name="Martínez", allergies="Penicillin — hives\nLatex"
    )


@pytest.fixture
def station(db: None):  # type: ignore[no-untyped-def]
    return StationFactory(code="proc-1", name="Procedure room 1")


@pytest.fixture
def exam_room(db: None):  # type: ignore[no-untyped-def]
    return ExamRoomFactory(name="Exam 3")


@pytest.fixture
def handoff(clinician: User, patient, exam_room):  # type: ignore[no-untyped-def]
    return HandoffFactory(patient=patient, ordering_clinician=clinician, created_by=clinician, exam_room=exam_room)
