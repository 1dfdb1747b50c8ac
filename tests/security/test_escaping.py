"""Stored HTML/JS comes back escaped on every page that shows it; CSV cells never start a formula.

Every free-text field a page prints (the patient's names, allergies and language, the handoff's note,
companion and interpreter language, the staff's names, the exam room's and station's names, the
procedure's documentation and addenda) holds a payload with its own marker. Each page must show each
payload it prints in its escaped form, and no payload may come out as markup in any letter case: the
names go through ``|upper`` in places, and ``<SCRIPT>`` runs as well as ``<script>`` does.
"""

import csv
import io
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from backoffice import roles
from backoffice.audit.log import csv_safe
from backoffice.models import Handoff, User
from procedures import services as procedure_services
from procedures.models import ProcedureOrder
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.procedures.helpers import documented, finished, new_ma, ready_handoff, start
from tests.security.conftest import sign_in_verified

pytestmark = pytest.mark.django_db

MARKER = "xss-"
INJECTED_TAGS = {"script", "img", "iframe", "svg", "object", "embed"}


def script(tag: str) -> str:
    return f"<script>alert('{MARKER}{tag}')</script>"


def img(tag: str) -> str:
    return f"\"><img src=x onerror=alert('{MARKER}{tag}')>"


SCRIPT = script("x")
IMG = img("x")

# One payload per field; the key says where it is stored. Short tags: some columns hold 40 characters.
PAYLOADS: dict[str, str] = {
    "given_name": script("gn"),
    "family_name": img("fn"),  # printed through |upper
    "allergy_script": script("al1"),
    "allergy_img": img("al2"),
    "preferred_language": img("pl"),
    "clinical_note": script("note"),
    "interpreter_language": script("int"),
    "companion": img("comp"),
    "exam_room": script("room"),
    "station": img("stn"),
    "clinician_first": script("cfn"),
    "clinician_last": img("cln"),
    "ma_first": script("mfn"),
    "ma_last": img("mln"),
    "site": script("site"),
    "consent_from": img("cons"),
    "complications": script("cmp"),
    "addendum": script("add"),
}

PATIENT = ("given_name", "family_name")
ALLERGIES = ("allergy_script", "allergy_img")
NEEDS = ("interpreter_language", "companion")
MA = ("ma_first", "ma_last")
CLINICIAN = ("clinician_first", "clinician_last")


# --- The checker -------------------------------------------------------------------------------


class _InjectedMarkup(HTMLParser):
    """Elements and attributes that stored text put into the page, however their letters are cased."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # HTMLParser lowercases tag and attribute names: <SCRIPT> and <ImG OnErRoR> arrive lowercased.
        handlers = [name for name, _ in attrs if name.startswith("on")]
        if handlers:
            self.found.append(f"<{tag}> with event handler attribute(s) {handlers}")
        # A payload as an attribute's value (an <input value="...">) is text; a payload's own element is not.
        values = " ".join(value or "" for _, value in attrs).lower()
        if tag in INJECTED_TAGS and MARKER in values:
            self.found.append(f"<{tag}> made by a payload: {attrs}")
        if tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and MARKER in data.lower():
            self.found.append(f"a <script> element running a payload: {data!r}")


def unescaped_markup(content: str) -> list[str]:
    """Every payload that came out as markup: verbatim in any letter case, or as an element it made."""
    lowered = content.lower()
    problems = [f"raw payload {raw!r}" for raw in {*PAYLOADS.values(), SCRIPT, IMG} if raw.lower() in lowered]
    parser = _InjectedMarkup()
    parser.feed(content)
    parser.close()
    return problems + parser.found


def missing_escaped(content: str, fields: tuple[str, ...]) -> list[str]:
    """The fields whose escaped payload (in any letter case) the page doesn't show."""
    lowered = content.lower()
    return [field for field in fields if escape(PAYLOADS[field]).lower() not in lowered]


def assert_escaped(content: str, shows: tuple[str, ...]) -> None:
    """No payload comes out as markup, and each field in `shows` is on the page, escaped."""
    problems = unescaped_markup(content)
    assert not problems, "unescaped on the page:\n" + "\n".join(problems)
    missing = missing_escaped(content, shows)
    assert not missing, f"these fields' escaped payloads are not on the page: {missing}"


# --- The checker checks something ----------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        # |safe|upper still escapes (upper's result isn't safe); the mistake a page could make is |upper|safe.
        Template("<p>{{ value|upper|safe }}</p>").render(Context({"value": PAYLOADS["given_name"]})),
        Template("{% autoescape off %}<p>{{ value|upper }}</p>{% endautoescape %}").render(
            Context({"value": PAYLOADS["family_name"]})
        ),
        f"<td>{mark_safe(PAYLOADS['companion'])}</td>",  # noqa: S308
        "<span><ScRiPt>alert('xss-gn')</sCrIpT></span>",
        '<span title=""><IMG SRC=x ONERROR=alert(1)></span>',
        "<div><script>fetch('/?c='+document.cookie+'XSS-other')</script></div>",
    ],
)
def test_the_checker_reports_unescaped_markup(html: str) -> None:
    assert unescaped_markup(html), html
    with pytest.raises(AssertionError, match="unescaped on the page"):
        assert_escaped(html, ())


def test_the_checker_passes_escaped_text_and_reports_a_missing_field() -> None:
    html = Template("<p>{{ a|upper }}</p><p>{{ b }}</p>").render(
        Context({"a": PAYLOADS["family_name"], "b": PAYLOADS["given_name"]})
    )
    assert "&lt;IMG SRC=X ONERROR=ALERT(" in html  # escaped after |upper: only the case changed
    assert unescaped_markup(html) == []
    assert_escaped(html, ("family_name", "given_name"))
    assert missing_escaped(html, ("family_name", "given_name", "companion")) == ["companion"]
    with pytest.raises(AssertionError, match="companion"):
        assert_escaped(html, ("family_name", "given_name", "companion"))


# --- Every page that prints stored text ----------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    handoff: Handoff
    order: ProcedureOrder
    ma: User


@pytest.fixture
def hostile() -> Hostile:
    """A handoff whose every free-text field holds a payload, its injection documented by a trainee
    and waiting for a co-sign, with an addendum, a draw still to do: each page has something hostile to print.
    """
    p = PAYLOADS
    clinician = UserFactory(
        username="hostile-doc",
        first_name=p["clinician_first"],
        last_name=p["clinician_last"],
        role=roles.ROLE_CLINICIAN,
    )
    ma = new_ma(username="hostile-ma", first_name=p["ma_first"], last_name=p["ma_last"])
    patient = PatientFactory(
        given_name=p["given_name"],
        family_name=p["family_name"],
        allergies=f"{p['allergy_script']}\n{p['allergy_img']}",
        preferred_language=p["preferred_language"],
    )
    handoff = HandoffFactory(
        patient=patient,
        ordering_clinician=clinician,
        created_by=clinician,
        exam_room=ExamRoomFactory(name=p["exam_room"]),
        clinical_note=p["clinical_note"],
        interpreter_needed=True,
        interpreter_language=p["interpreter_language"],
        companion=p["companion"],
    )
    station = StationFactory(code="hostile-1", name=p["station"])
    # The draw, not started, keeps the patient on the queue and the board: the injection sent for co-sign doesn't.
    _, orders = ready_handoff("96372", "36415", ma=ma, station=station, handoff=handoff)
    order = start(orders["96372"], ma, cosign=True)
    documented(order, ma, site=p["site"], consent_from=p["consent_from"], complications=p["complications"])
    finished(order, ma)
    procedure_services.procedure_add_addendum(order=order, by=ma, reason="late_entry", text=p["addendum"])
    handoff.refresh_from_db()
    order.refresh_from_db()
    return Hostile(handoff=handoff, order=order, ma=ma)


QUEUE_ROW = (*PATIENT, *ALLERGIES, *NEEDS, "exam_room", "station", *CLINICIAN, *MA)
BOARD = (*PATIENT, *ALLERGIES, *NEEDS, "exam_room", "station", *MA)
HANDOFF_PAGE = (*QUEUE_ROW, "preferred_language", "clinical_note")
PROCEDURE_PAGE = (
    *PATIENT,
    *ALLERGIES,
    *NEEDS,
    "preferred_language",
    "clinical_note",
    "exam_room",
    "station",
    *CLINICIAN,
    *MA,
    "site",
    "consent_from",
    "complications",
    "addendum",
)
PROCEDURE_QUEUE = (*PATIENT, *ALLERGIES, "station", *MA, "site", "complications")

PAGES = [
    # (viewer, page, htmx, the fields the page prints)
    ("medical_assistant", "queue", False, QUEUE_ROW),
    ("medical_assistant", "queue", True, QUEUE_ROW),
    ("supervisor", "queue", False, QUEUE_ROW),
    ("supervisor", "board", False, BOARD),
    ("supervisor", "board", True, BOARD),
    ("medical_assistant", "handoff_detail", False, HANDOFF_PAGE),
    ("clinician", "handoff_detail", False, HANDOFF_PAGE),
    ("supervisor", "handoff_detail", False, HANDOFF_PAGE),
    ("hostile_ma", "handoff_detail", False, HANDOFF_PAGE),
    ("supervisor", "procedures:detail", False, PROCEDURE_PAGE),
    ("clinician", "procedures:detail", False, PROCEDURE_PAGE),
    ("hostile_ma", "procedures:detail", False, PROCEDURE_PAGE),
    ("supervisor", "procedures:queue", False, PROCEDURE_QUEUE),
    ("hostile_ma", "procedures:queue", False, PROCEDURE_QUEUE),
]


def _url(page: str, hostile: Hostile) -> str:
    if page == "handoff_detail":
        return reverse(page, args=[hostile.handoff.uuid])
    if page == "procedures:detail":
        return reverse(page, args=[hostile.order.uuid])
    return reverse(page)


@pytest.mark.parametrize(("viewer", "page", "htmx", "shows"), PAGES)
def test_hostile_text_is_escaped_on_every_page(  # type: ignore[no-untyped-def]
    client: Client, request, hostile: Hostile, viewer: str, page: str, htmx: bool, shows: tuple[str, ...]
) -> None:
    sign_in_verified(client, hostile.ma if viewer == "hostile_ma" else request.getfixturevalue(viewer))
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(_url(page, hostile), headers=headers)
    assert response.status_code == 200
    content = response.content.decode()
    if htmx:
        assert "<html" not in content  # the partial, not the whole page
    assert_escaped(content, shows)


def test_rows_served_from_the_fragment_cache_stay_escaped(
    client: Client, medical_assistant: User, supervisor: User, hostile: Hostile
) -> None:
    """The second load of the queue and the board reads the rows' cached HTML: still escaped."""
    client.force_login(medical_assistant)
    client.get(reverse("queue"))
    assert_escaped(client.get(reverse("queue")).content.decode(), QUEUE_ROW)
    sign_in_verified(client, supervisor)
    client.get(reverse("board"))
    assert_escaped(client.get(reverse("board")).content.decode(), BOARD)


def test_hostile_text_is_escaped_on_the_audit_page(client: Client, auditor: User, hostile: Hostile) -> None:
    client.force_login(hostile.ma)  # an access row by hostile staff, naming the hostile patient
    assert client.get(reverse("handoff_detail", args=[hostile.handoff.uuid])).status_code == 200
    sign_in_verified(client, auditor)
    response = client.post(reverse("audit"), {"patient": hostile.handoff.patient.mrn})
    assert response.status_code == 200
    assert_escaped(response.content.decode(), (*PATIENT, *MA))


def test_hostile_search_input_is_escaped_on_the_audit_page(client: Client, auditor: User) -> None:
    sign_in_verified(client, auditor)
    response = client.post(reverse("audit"), {"username": PAYLOADS["given_name"], "patient": PAYLOADS["family_name"]})
    assert response.status_code in (200, 422)
    assert_escaped(response.content.decode(), ("given_name", "family_name"))


# --- CSV -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_csv_safe_neutralises_formula_prefixes(prefix: str) -> None:
    assert csv_safe(f"{prefix}HYPERLINK(1)") == f"'{prefix}HYPERLINK(1)"
    assert csv_safe("plain") == "plain"
    assert csv_safe(None) == ""


def test_audit_export_neutralises_formula_cells(client: Client, auditor: User, medical_assistant: User) -> None:
    patient = PatientFactory(given_name="@SUM(A1)", family_name='=HYPERLINK("http://evil")')
    handoff = HandoffFactory(patient=patient)
    client.force_login(medical_assistant)
    client.get(reverse("handoff_detail", args=[handoff.uuid]))
    sign_in_verified(client, auditor)
    response = client.post(reverse("audit_export"), {"patient": patient.mrn})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    names = [row[9] for row in rows[1:] if row[9]]
    assert names, rows
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert '\'=HYPERLINK("http://evil"), @SUM(A1)' in names
    # The procedures charge CSV runs every cell through csv_safe too:
    # tests/procedures/test_views.py checks it end to end with a formula in the patient's name.
