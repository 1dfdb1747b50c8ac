"""Each resource type's rows, how they are fetched for building, and the search parameters that work.

One table (TYPES) says it all: the views read and search through it, and the CapabilityStatement
(backoffice.fhir.capability) is made from it, so what /fhir/metadata lists is what works.

A type may be built from more than one kind of row (ServiceRequest: procedure and lab test orders;
Task: those and send-outs). A search then pages over the union of their ids, newest first, and
fetches each kind's rows of the page in one query (with its related rows), so the number of queries
depends on how many kinds there are, never on the page size.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Value
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from fhir.resources.R4B.resource import Resource

from backoffice.fhir import builders, codes
from backoffice.fhir.outcomes import FhirError, bad_request
from backoffice.models import Patient, User
from lab.models import ReferenceLab, Result, SendOut, TestOrder
from lab.workflow import ResultStatus
from procedures.models import ProcedureOrder
from procedures.workflow import ProcedureStatus
from specimens.models import Specimen

Filter = Callable[[str], Q]
NOTHING = Q(pk__in=[])

# Parameters that may name a patient: searched only by POST (_search), so they never stand in a URL.
POST_ONLY_PARAMS = frozenset({"identifier", "name", "family", "given", "birthdate", "gender", "telecom", "phone"})
# Paging and page size: every search takes them.
CONTROL_PARAMS = frozenset({"_count", "_page", "_offset"})
DEFAULT_COUNT, MAX_COUNT = 20, 100


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # the FHIR search parameter type, as the CapabilityStatement says it
    documentation: str


@dataclass(frozen=True)
class Source:
    """One kind of row a resource type is built from."""

    queryset: Callable[[], QuerySet[Any]]
    build: Callable[[Any], Resource]
    patient_of: Callable[[Any], int | None]
    sort: str  # newest first by this, then by uuid
    filters: dict[str, Filter]
    # What a search finds (a read finds every row of ``queryset``, e.g. a superseded result too).
    searched: Q = field(default_factory=Q)


@dataclass(frozen=True)
class ResourceType:
    name: str
    sources: tuple[Source, ...]
    params: tuple[Param, ...]
    patient_data: bool = True  # reads and searches are access-logged with their patients

    def param_names(self) -> set[str]:
        return {"_id", *(p.name for p in self.params)}


# --- Parsing values ------------------------------------------------------------------------------


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def by_uuid(path: str) -> Filter:
    def q(value: str) -> Q:
        parsed = _uuid(value)
        return Q(**{path: parsed}) if parsed is not None else NOTHING

    return q


def by_patient(path: str) -> Filter:
    def q(value: str) -> Q:
        parsed = _uuid(value.removeprefix("Patient/"))
        if parsed is None:
            raise bad_request("patient takes a Patient id (Patient/<id>).")
        return Q(**{path: parsed})

    return q


def by_token(path: str, *, system: str | None = None) -> Filter:
    """``code`` or ``system|code``; a system other than ours matches nothing."""

    def q(value: str) -> Q:
        given_system, bar, code = value.rpartition("|")
        if bar and system is not None and given_system and given_system != system:
            return NOTHING
        return Q(**{path: code})

    return q


def by_code(path: str, system_of: Callable[[str], str] | str) -> Filter:
    def q(value: str) -> Q:
        given_system, bar, code = value.rpartition("|")
        expected = system_of(code) if callable(system_of) else system_of
        if bar and given_system and given_system != expected:
            return NOTHING
        return Q(**{path: code})

    return q


def by_status(statuses: dict[str, Q], *, of_type: Iterable[str] = ()) -> Filter:
    """A FHIR status as our rows; one the type knows (``of_type``) but this kind of row never has matches none."""
    known = {*statuses, *of_type}

    def q(value: str) -> Q:
        if value not in known:
            raise bad_request(f"Unknown status {value!r}: one of {', '.join(sorted(known))}.")
        return statuses.get(value, NOTHING)

    return q


def mapped(mapping: dict[str, str], path: str = "status") -> dict[str, Q]:
    """Our statuses grouped by the FHIR status each maps to: {"active": Q(status__in=[...]), ...}."""
    grouped: dict[str, list[str]] = {}
    for ours, theirs in mapping.items():
        grouped.setdefault(theirs, []).append(ours)
    return {theirs: Q(**{f"{path}__in": ours}) for theirs, ours in grouped.items()}


PREFIXES = ("eq", "ne", "ge", "le", "gt", "lt")


def _bounds(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end) of a date or dateTime value: a day runs from its midnight (clinic time) to the next."""
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    text = value[2:] if value[:2] in PREFIXES else value
    moment = parse_datetime(text) if "T" in text else None
    if moment is not None:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return prefix, moment, moment
    try:
        day = parse_date(text)
    except ValueError:
        day = None
    if day is None:
        raise bad_request(f"Not a date: {value!r} (YYYY-MM-DD or a dateTime, after ge, le, gt, lt or eq).")
    start = timezone.make_aware(datetime.combine(day, time.min))
    return prefix, start, start + timedelta(days=1)


def by_date(path: str) -> Filter:
    def q(value: str) -> Q:
        prefix, start, end = _bounds(value)
        if prefix == "ne":
            raise bad_request("The ne prefix is not supported; use ge, le, gt, lt or eq.")
        exact = start == end
        return {
            "eq": Q(**{path: start}) if exact else Q(**{f"{path}__gte": start, f"{path}__lt": end}),
            "ge": Q(**{f"{path}__gte": start}),
            "gt": Q(**{f"{path}__gt": start}) if exact else Q(**{f"{path}__gte": end}),
            "le": Q(**{f"{path}__lte": start}) if exact else Q(**{f"{path}__lt": end}),
            "lt": Q(**{f"{path}__lt": start}),
        }[prefix]

    return q


def by_name(value: str) -> Q:
    return Q(family_name__istartswith=value) | Q(given_name__istartswith=value)


def by_birthdate(value: str) -> Q:
    prefix, start, _ = _bounds(value)
    day = timezone.localtime(start).date()
    lookups = {"eq": "", "ge": "__gte", "gt": "__gt", "le": "__lte", "lt": "__lt"}
    if prefix not in lookups:
        raise bad_request("birthdate takes eq, ge, gt, le or lt.")
    return Q(**{f"date_of_birth{lookups[prefix]}": day})


# --- The rows of each type, with what its builder needs -------------------------------------------


def _patients() -> QuerySet[Patient]:
    return Patient.objects.all()


def _procedure_orders() -> QuerySet[ProcedureOrder]:
    # One query: the order, its handoff, patient, ordering clinician, claimer, type, people and documentation.
    return ProcedureOrder.objects.select_related(
        "handoff__patient",
        "handoff__ordering_clinician",
        "handoff__claimed_by",
        "procedure_type",
        "performer",
        "supervisor",
        "cosigned_by",
        "documentation",
    )


def _test_orders() -> QuerySet[TestOrder]:
    # One query: the order, its handoff, patient, ordering clinician, test, specimen, send-out and its lab.
    return TestOrder.objects.select_related(
        "handoff__patient", "handoff__ordering_clinician", "test", "specimen", "send_out__reference_lab"
    )


def _released_results() -> Prefetch:
    current = Result.objects.filter(status=ResultStatus.RELEASED).select_related("analyte")
    return Prefetch("results", queryset=current.order_by("analyte__position", "id"), to_attr="released")


def _reports() -> QuerySet[TestOrder]:
    # Two queries: the orders as _test_orders, then the released results of the page's orders.
    return _test_orders().prefetch_related(_released_results())


def _send_outs() -> QuerySet[SendOut]:
    return SendOut.objects.select_related("order__handoff__patient", "order__test", "reference_lab")


def _specimens() -> QuerySet[Specimen]:
    # Two queries: the specimen with its patient, type, container, collector, rejection reason and
    # first specimen; then the page's test orders.
    return Specimen.objects.select_related(
        "patient", "specimen_type", "container", "collected_by", "rejection_reason", "recollection_of"
    ).prefetch_related(Prefetch("test_orders", queryset=TestOrder.objects.order_by("id")))


def _results() -> QuerySet[Result]:
    # One query: the result, its patient, analyte, specimen, order, lab and reference range.
    return Result.objects.filter(status__in=[ResultStatus.RELEASED, ResultStatus.SUPERSEDED]).select_related(
        "patient", "analyte", "specimen", "order", "reference_lab", "reference_range__analyte"
    )


# --- Statuses as searched (each mirrors the builder that computes it; tests compare them) ----------

# Task's statuses as our workflows use them (each kind of row uses some).
TASK_STATUSES = ("requested", "accepted", "in-progress", "on-hold", "completed", "cancelled", "failed")
Pst = ProcedureStatus
PROCEDURE_TASK = {
    "requested": Q(status=Pst.ORDERED, handoff__claimed_by__isnull=True),
    "accepted": Q(status=Pst.ORDERED, handoff__claimed_by__isnull=False),
    "in-progress": Q(status__in=[Pst.IN_PROGRESS, Pst.PERFORMED, Pst.RETURNED]),
    "on-hold": Q(status=Pst.AWAITING_COSIGN),
    "completed": Q(status=Pst.COMPLETED),
    "failed": Q(status=Pst.NOT_DONE, not_done_reason__in=builders.PROCEDURE_FAILED_REASONS),
    "cancelled": Q(status=Pst.NOT_DONE) & ~Q(not_done_reason__in=builders.PROCEDURE_FAILED_REASONS),
}
T = TestOrder.Status
TEST_TASK = {
    "requested": Q(status=T.ORDERED, needs_recollection=False),
    "on-hold": Q(status=T.ORDERED, needs_recollection=True),
    "accepted": Q(status=T.COLLECTED),
    "in-progress": Q(status__in=[T.IN_PROGRESS, T.SENT_OUT]),
    "completed": Q(status=T.RESULTED),
    "failed": Q(status=T.CANCELLED, cancel_reason__in=builders.TEST_FAILED_REASONS),
    "cancelled": Q(status=T.CANCELLED) & ~Q(cancel_reason__in=builders.TEST_FAILED_REASONS),
}
_P, _C = Result.ReportStatus.PRELIMINARY, Result.ReportStatus.CORRECTED
OBSERVATION = {
    "preliminary": Q(report_status=_P),
    "corrected": Q(report_status=_C),
    "amended": ~Q(report_status__in=[_P, _C]) & Q(amends__isnull=False),
    "final": ~Q(report_status__in=[_P, _C]) & Q(amends__isnull=True),
}
_released = Result.objects.filter(order=OuterRef("pk"), status=ResultStatus.RELEASED)
_any_released = Exists(_released)
_corrected = Exists(_released.filter(report_status=_C))
_amended = Exists(_released.filter(amends__isnull=False).exclude(report_status__in=[_P, _C]))
REPORT = {
    "cancelled": Q(status=T.CANCELLED),
    "corrected": Q(status=T.RESULTED) & Q(_corrected),
    "amended": Q(status=T.RESULTED) & ~Q(_corrected) & Q(_amended),
    "final": Q(status=T.RESULTED) & ~Q(_corrected) & ~Q(_amended),
    "preliminary": ~Q(status__in=[T.CANCELLED, T.RESULTED]) & Q(_any_released) & Q(send_out__status="preliminary"),
    "partial": ~Q(status__in=[T.CANCELLED, T.RESULTED])
    & Q(_any_released)
    & (Q(send_out__isnull=True) | ~Q(send_out__status="preliminary")),
    "registered": ~Q(status__in=[T.CANCELLED, T.RESULTED]) & ~Q(_any_released),
}


# --- The table -----------------------------------------------------------------------------------

_patient = Param("patient", "reference", "The patient, by its Patient id.")
_code_loinc = Param("code", "token", "The test's LOINC code (http://loinc.org|code or code).")


def _on_handoff(order: Any) -> int | None:
    patient_id: int | None = order.handoff.patient_id
    return patient_id


PATIENT = ResourceType(
    "Patient",
    sources=(
        Source(
            _patients,
            builders.patient,
            lambda row: row.pk,
            "created_at",
            {
                "_id": by_uuid("uuid"),
                "identifier": by_token("mrn", system=codes.MRN),
                "name": by_name,
                "birthdate": by_birthdate,
            },
        ),
    ),
    params=(
        Param("identifier", "token", f"The MRN ({codes.MRN}|value or value). POST _search only."),
        Param("name", "string", "The start of the family or given name. POST _search only."),
        Param("birthdate", "date", "The date of birth, with eq, ge, gt, le or lt. POST _search only."),
    ),
)

PRACTITIONER = ResourceType(
    "Practitioner",
    sources=(
        Source(
            lambda: User.objects.all(), builders.practitioner, lambda row: None, "date_joined", {"_id": by_uuid("uuid")}
        ),
    ),
    params=(),
    patient_data=False,
)

ORGANIZATION = ResourceType(
    "Organization",
    sources=(
        Source(
            lambda: ReferenceLab.objects.all(),
            builders.organization,
            lambda row: None,
            "name",
            {"_id": by_uuid("uuid")},
        ),
    ),
    params=(),
    patient_data=False,
)

_procedure_request_filters: dict[str, Filter] = {
    "_id": by_uuid("uuid"),
    "patient": by_patient("handoff__patient__uuid"),
    "status": by_status(mapped(builders.PROCEDURE_REQUEST_STATUS)),
    "code": by_code("procedure_type__code", codes.procedure_code_system),
    "authored": by_date("created_at"),
    "identifier": lambda value: NOTHING,  # placer numbers are the send-outs'
}
_test_request_filters: dict[str, Filter] = {
    "_id": by_uuid("uuid"),
    "patient": by_patient("handoff__patient__uuid"),
    "status": by_status(mapped(builders.TEST_REQUEST_STATUS)),
    "code": by_code("test__loinc_code", codes.LOINC),
    "authored": by_date("created_at"),
    "identifier": by_token("send_out__placer_number", system=codes.PLACER),
}
SERVICE_REQUEST = ResourceType(
    "ServiceRequest",
    sources=(
        Source(_procedure_orders, builders.procedure_request, _on_handoff, "created_at", _procedure_request_filters),
        Source(_test_orders, builders.test_request, _on_handoff, "created_at", _test_request_filters),
    ),
    params=(
        _patient,
        Param("status", "token", "active, completed or revoked."),
        Param("code", "token", "The procedure's CPT/HCPCS code or the test's LOINC code."),
        Param("authored", "date", "When it was ordered, with eq, ge, gt, le or lt."),
        Param("identifier", "token", f"A send-out's placer order number ({codes.PLACER}). POST _search only."),
    ),
)

TASK = ResourceType(
    "Task",
    sources=(
        Source(
            _procedure_orders,
            builders.procedure_task,
            _on_handoff,
            "created_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("handoff__patient__uuid"),
                "status": by_status(PROCEDURE_TASK, of_type=TASK_STATUSES),
                "authored-on": by_date("created_at"),
                "identifier": lambda value: NOTHING,
            },
        ),
        Source(
            _test_orders,
            builders.test_task,
            _on_handoff,
            "created_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("handoff__patient__uuid"),
                "status": by_status(TEST_TASK, of_type=TASK_STATUSES),
                "authored-on": by_date("created_at"),
                "identifier": lambda value: NOTHING,
            },
        ),
        Source(
            _send_outs,
            builders.send_out_task,
            lambda row: row.order.handoff.patient_id,
            "created_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("order__handoff__patient__uuid"),
                "status": by_status(mapped(builders.SEND_OUT_TASK_STATUS), of_type=TASK_STATUSES),
                "authored-on": by_date("created_at"),
                "identifier": by_token("placer_number", system=codes.PLACER),
            },
        ),
    ),
    params=(
        _patient,
        Param("status", "token", "requested, accepted, in-progress, on-hold, completed, cancelled or failed."),
        Param("authored-on", "date", "When the order or send-out was made, with eq, ge, gt, le or lt."),
        Param("identifier", "token", f"A send-out's placer order number ({codes.PLACER}). POST _search only."),
    ),
)

SPECIMEN = ResourceType(
    "Specimen",
    sources=(
        Source(
            _specimens,
            builders.specimen,
            lambda row: row.patient_id,
            "labelled_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("patient__uuid"),
                "status": by_status(mapped(builders.SPECIMEN_STATUS)),
                "type": by_code("specimen_type__snomed_code", codes.SNOMED),
                "collected": by_date("collected_at"),
                "identifier": by_token("accession", system=codes.ACCESSION),
            },
        ),
    ),
    params=(
        _patient,
        Param("status", "token", "available, unavailable or unsatisfactory (rejected)."),
        Param("type", "token", "The specimen type's SNOMED CT code."),
        Param("collected", "date", "When it was collected, with eq, ge, gt, le or lt."),
        Param("identifier", "token", f"The accession number ({codes.ACCESSION}). POST _search only."),
    ),
)

PROCEDURE = ResourceType(
    "Procedure",
    sources=(
        Source(
            _procedure_orders,
            builders.procedure,
            _on_handoff,
            "created_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("handoff__patient__uuid"),
                "status": by_status(mapped(builders.PROCEDURE_STATUS)),
                "code": by_code("procedure_type__code", codes.procedure_code_system),
                "date": by_date("performed_at"),
            },
        ),
    ),
    params=(
        _patient,
        Param("status", "token", "preparation, in-progress, completed or not-done."),
        Param("code", "token", "The procedure's CPT/HCPCS code."),
        Param("date", "date", "When it was performed, with eq, ge, gt, le or lt."),
    ),
)

OBSERVATION_TYPE = ResourceType(
    "Observation",
    sources=(
        Source(
            _results,
            builders.observation,
            lambda row: row.patient_id,
            "released_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("patient__uuid"),
                "status": by_status(OBSERVATION),
                "code": by_code("analyte__loinc_code", codes.LOINC),
                "date": by_date("specimen__collected_at"),
            },
            # A search finds the current results; a superseded one is still read by its id.
            searched=Q(status=ResultStatus.RELEASED),
        ),
    ),
    params=(
        _patient,
        Param("status", "token", "preliminary, final, amended or corrected."),
        Param("code", "token", "The analyte's LOINC code."),
        Param("date", "date", "When its specimen was collected, with eq, ge, gt, le or lt."),
    ),
)

DIAGNOSTIC_REPORT = ResourceType(
    "DiagnosticReport",
    sources=(
        Source(
            _reports,
            builders.diagnostic_report,
            _on_handoff,
            "created_at",
            {
                "_id": by_uuid("uuid"),
                "patient": by_patient("handoff__patient__uuid"),
                "status": by_status(REPORT),
                "code": by_code("test__loinc_code", codes.LOINC),
                "date": by_date("specimen__collected_at"),
            },
        ),
    ),
    params=(
        _patient,
        Param("status", "token", "registered, partial, preliminary, final, amended, corrected or cancelled."),
        _code_loinc,
        Param("date", "date", "When its specimen was collected, with eq, ge, gt, le or lt."),
    ),
)

TYPES: dict[str, ResourceType] = {
    t.name: t
    for t in (
        PATIENT,
        PRACTITIONER,
        ORGANIZATION,
        SERVICE_REQUEST,
        TASK,
        SPECIMEN,
        PROCEDURE,
        OBSERVATION_TYPE,
        DIAGNOSTIC_REPORT,
    )
}


# --- Reading and searching -----------------------------------------------------------------------


@dataclass
class Found:
    resources: list[Resource]
    patient_ids: list[int]
    total: int


def read(rtype: ResourceType, resource_id: str) -> tuple[Resource, int | None] | None:
    """The resource with this id and its patient's id; None if there is none. One query per kind of row."""
    if rtype is ORGANIZATION and resource_id == codes.IN_HOUSE_LAB_ID:
        return builders.organization(None), None
    parsed = _uuid(resource_id)
    if parsed is None:
        return None
    for source in rtype.sources:
        row = source.queryset().filter(uuid=parsed).first()
        if row is not None:
            return source.build(row), source.patient_of(row)
    return None


def parse(rtype: ResourceType, params: dict[str, list[str]]) -> list[Q]:
    """One Q per source: the parameters ANDed, each one's comma-separated values ORed."""
    unknown = sorted(set(params) - rtype.param_names() - CONTROL_PARAMS)
    if unknown:
        raise bad_request(f"Unknown search parameter for {rtype.name}: {', '.join(unknown)}.")
    per_source = []
    for source in rtype.sources:
        combined = source.searched
        for name, values in params.items():
            if name in CONTROL_PARAMS:
                continue
            for value in values:
                alternatives = [v.strip() for v in value.split(",") if v.strip()]
                if not alternatives:
                    raise bad_request(f"{name} has no value.")
                either = Q()
                for alternative in alternatives:
                    either |= source.filters[name](alternative)
                combined &= either
        per_source.append(combined)
    return per_source


def page_size(params: dict[str, list[str]]) -> int:
    raw = params.get("_count", [str(DEFAULT_COUNT)])[-1]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_COUNT:
        raise bad_request(f"_count is a whole number from 1 to {MAX_COUNT}.")
    return int(raw)


def search(rtype: ResourceType, params: dict[str, list[str]], *, offset: int, count: int) -> Found:
    """One page of matches, newest first, and how many there are in all.

    One kind of row: a count and the page (with its prefetches). Several: a count of the union, the
    page's ids from the union, then each kind's rows of the page (with its prefetches).
    """
    wheres = parse(rtype, params)
    if len(rtype.sources) == 1:
        [source], [where] = rtype.sources, wheres
        matching = source.queryset().filter(where)
        total = matching.count()
        rows = list(matching.order_by(F(source.sort).desc(nulls_last=True), "-uuid")[offset : offset + count])
        return Found(
            [source.build(row) for row in rows], [p for p in map(source.patient_of, rows) if p is not None], total
        )
    parts = [
        source.queryset()
        .select_related(None)
        .prefetch_related(None)
        .filter(where)
        .annotate(_at=F(source.sort), _ref=F("uuid"), _kind=Value(kind))
        .values_list("_at", "_ref", "_kind")
        .order_by()
        for kind, (source, where) in enumerate(zip(rtype.sources, wheres, strict=True))
    ]
    union = parts[0].union(*parts[1:], all=True)
    total = union.count()
    page = list(union.order_by(F("_at").desc(nulls_last=True), "-_ref")[offset : offset + count])
    rows_by_ref: dict[tuple[int, uuid.UUID], Any] = {}
    for kind, source in enumerate(rtype.sources):
        refs = [ref for _, ref, k in page if k == kind]
        if refs:
            rows_by_ref.update({(kind, row.uuid): row for row in source.queryset().filter(uuid__in=refs)})
    ordered = [(rtype.sources[k], rows_by_ref[(k, ref)]) for _, ref, k in page]
    patients = [p for source, row in ordered if (p := source.patient_of(row)) is not None]
    return Found([source.build(row) for source, row in ordered], patients, total)


def params_of(pairs: Iterable[tuple[str, list[str]]]) -> dict[str, list[str]]:
    return {name: list(values) for name, values in pairs}


__all__ = ["CONTROL_PARAMS", "POST_ONLY_PARAMS", "TYPES", "FhirError", "Found", "ResourceType", "read", "search"]
