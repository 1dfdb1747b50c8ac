"""Core records every app shares: staff, patients, stations, handoffs and their events."""

import re
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import pghistory
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property
from stdnum import luhn

from backoffice.identifiers import validate_mrn
from backoffice.text import patient_search_text
from backoffice.transitions import APPEND_ONLY, TransitionEvent
from backoffice.workflow import (
    IDENTIFIED_STATUSES,
    OPEN_STATUSES,
    HandBackReason,
    HandoffStatus,
    Priority,
    StationState,
)


def tracked_history(model_name: str) -> dict[str, Any]:
    """Field-level history by trigger, for ``@pghistory.track(**tracked_history("…History"))``.

    A snapshot on insert and on every update that changes something, each carrying the request's
    context (user, path) set by pghistory's middleware. The snapshot tables are append-only, like
    the event rows.
    """
    # "handoff history" / "handoff histories": Django's default plural would be "historys".
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", model_name).lower()
    return {
        "model_name": model_name,
        "append_only": True,
        "obj_field": pghistory.ObjForeignKey(related_name="history", db_index=True),
        "meta": {"verbose_name": words, "verbose_name_plural": words.removesuffix("y") + "ies"},
    }


def whole_minutes(start: datetime, end: datetime) -> int:
    """Whole minutes from start to end, never negative: the waits the pages print."""
    return max(0, int((end - start).total_seconds() // 60))


def minutes_label(minutes: int) -> str:
    """A wait as the pages print it: "45 min", or "2 h 05 min" from an hour on."""
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def validate_npi(value: str) -> None:
    """A National Provider Identifier: ten digits, the last a Luhn check over 80840 and the first nine."""
    if not (len(value) == 10 and value.isdigit() and luhn.is_valid(f"80840{value}")):
        raise ValidationError(
            "%(value)s is not a valid NPI: ten digits, the last one a check digit.", code="npi", params={"value": value}
        )


class User(AbstractUser):
    """A member of staff. Roles are Django groups (see backoffice.roles)."""

    # The opaque id other systems know them by (the FHIR API's Practitioner id), never the primary key.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=80, blank=True, help_text="Shown beside the name, e.g. 'Medical assistant'.")
    phone = models.CharField(
        "callback phone",
        max_length=30,
        blank=True,
        help_text="Direct line, mobile or pager the lab calls with a critical result, e.g. (212) 555-0147 or pager 2231.",
    )
    npi = models.CharField(
        "NPI",
        max_length=10,
        blank=True,
        validators=[validate_npi],
        help_text="The clinician's National Provider Identifier, sent with every order to a reference lab.",
    )

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [models.UniqueConstraint(fields=["npi"], condition=~Q(npi=""), name="user_npi_unique")]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @cached_property
    def role_names(self) -> list[str]:
        """The user's roles (groups) by name; the permission backend fills this without a query."""
        return sorted(self.groups.values_list("name", flat=True))


@pghistory.track(**tracked_history("CredentialHistory"))
class Credential(models.Model):
    """A professional credential held by a staff member (CMA, RMA, RN, ...)."""

    class Kind(models.TextChoices):
        CMA = "CMA", "Certified Medical Assistant (CMA)"
        RMA = "RMA", "Registered Medical Assistant (RMA)"
        CCMA = "CCMA", "Certified Clinical Medical Assistant (CCMA)"
        CPT = "CPT", "Certified Phlebotomy Technician (CPT)"
        LPN = "LPN", "Licensed Practical Nurse (LPN)"
        RN = "RN", "Registered Nurse (RN)"
        MLT = "MLT", "Medical Laboratory Technician (MLT)"
        MLS = "MLS", "Medical Laboratory Scientist (MLS)"
        MD = "MD", "Physician (MD)"
        DO = "DO", "Physician (DO)"
        NP = "NP", "Nurse Practitioner (NP)"
        PA = "PA", "Physician Assistant (PA)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    number = models.CharField(max_length=40)
    issued_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField()

    class Meta:
        ordering = ["user", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "number"], name="credential_kind_number_unique"),
            models.CheckConstraint(
                condition=Q(issued_on__isnull=True) | Q(expires_on__gt=models.F("issued_on")),
                name="credential_expires_after_issue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.number}"

    @property
    def short_label(self) -> str:
        """The credential as a page names it beside others: its abbreviation, except where that reads as
        something else (CPT, a phlebotomy certificate, is also the billing code system on the same pages)."""
        return CREDENTIAL_SHORT_LABELS.get(self.kind, self.kind)

    def is_current(self, on: date | None = None) -> bool:
        return self.expires_on >= (on or timezone.localdate())


CREDENTIAL_SHORT_LABELS: dict[str, str] = {Credential.Kind.CPT: "Phlebotomy tech"}


# What Patient.search_text is made of: a write of any of these writes it too.
PATIENT_SEARCHED_FIELDS = frozenset({"given_name", "family_name", "mrn"})


class PatientQuerySet(models.QuerySet["Patient"]):
    """Writes that skip Patient.save still keep search_text: bulk_create and bulk_update fill it,
    and update() refuses to change a searched field (save the rows instead)."""

    # django-stubs type these two over the queryset's own type variable, which a subclass can't name.
    def bulk_create(self, objs: Iterable["Patient"], *args: Any, **kwargs: Any) -> Any:
        rows: list[Any] = list(objs)
        for patient in rows:
            patient.search_text = patient.make_search_text()
        return super().bulk_create(rows, *args, **kwargs)

    def bulk_update(self, objs: Iterable["Patient"], fields: Iterable[str], *args: Any, **kwargs: Any) -> int:
        rows: list[Any] = list(objs)
        columns = list(fields)
        if PATIENT_SEARCHED_FIELDS & set(columns):
            for patient in rows:
                patient.search_text = patient.make_search_text()
            if "search_text" not in columns:
                columns.append("search_text")
        return super().bulk_update(rows, columns, *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        if PATIENT_SEARCHED_FIELDS & kwargs.keys() and "search_text" not in kwargs:
            raise TypeError("Patient names and MRNs change through save() or bulk_update(), which keep search_text.")
        return super().update(**kwargs)


# search_text is derived from tracked fields: its history would only repeat theirs.
@pghistory.track(**tracked_history("PatientHistory"), exclude=["search_text"])
class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "X", "Other"
        UNKNOWN = "U", "Unknown"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    mrn = models.CharField("MRN", max_length=20, unique=True, help_text="Medical record number, as on the wristband.")
    family_name = models.CharField(max_length=80)
    given_name = models.CharField(max_length=80)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=1, choices=Sex.choices)
    preferred_language = models.CharField(max_length=40, default="English")
    interpreter_needed = models.BooleanField(default=False)
    # The active allergy records, one line each (backoffice.allergies keeps it): what banners show.
    allergies = models.TextField(blank=True, help_text="One allergy per line, with the reaction where known.")
    no_known_allergies = models.BooleanField(
        "No known allergies (NKA)",
        default=False,
        help_text="Tick only when the patient was asked and has none; leave blank allergies unticked if not asked.",
    )
    allergies_reviewed_at = models.DateTimeField(
        "allergies asked at", null=True, blank=True, help_text="When the patient was last asked about allergies."
    )
    allergies_reviewed_by = models.ForeignKey(
        "User", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name="allergies asked by"
    )
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    address = models.CharField(max_length=200, blank=True)
    emergency_contact = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The names without accents or case and the MRN's endings (backoffice.text.patient_search_text), kept
    # by save() and PatientQuerySet; the search reads it through patient_search_idx (no unaccent needed).
    search_text = models.TextField(editable=False, default="")

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["family_name", "given_name"]
        indexes = [
            models.Index(fields=["family_name", "given_name"], name="patient_name_idx"),
            # Word starts of the search column: to_tsvector('simple') lowercases and stems nothing.
            GinIndex(SearchVector("search_text", config="simple"), name="patient_search_idx"),
            models.Index(fields=["date_of_birth"], name="patient_dob_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~(Q(no_known_allergies=True) & ~Q(allergies="")),
                name="patient_nka_means_no_allergies",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.search_text = self.make_search_text()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and PATIENT_SEARCHED_FIELDS & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "search_text"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """The MRN is in this clinic's format (MRN_PATTERN): admin's form and the imports ask this."""
        super().clean()
        if self.mrn:
            try:
                validate_mrn(self.mrn)
            except ValidationError as exc:
                raise ValidationError({"mrn": exc.messages}) from exc

    def make_search_text(self) -> str:
        return patient_search_text(given_name=self.given_name, family_name=self.family_name, mrn=self.mrn)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def allergy_list(self) -> list[str]:
        return [line.strip() for line in self.allergies.splitlines() if line.strip()]

    def age_on(self, on: date) -> int:
        dob = self.date_of_birth
        return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))

    @property
    def age(self) -> int:
        return self.age_on(timezone.localdate())


# --- Allergies: what the cross-check at ordering and administration compares drugs with ------------


class DrugClass(models.Model):
    """A class of drugs an allergy can name (penicillins, cephalosporins, NSAIDs)."""

    name = models.CharField(max_length=80, unique=True)
    also_matches = models.CharField(
        max_length=200,
        blank=True,
        help_text="Other words for it in allergies typed as text, comma-separated (e.g. penicillin, PCN).",
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "drug classes"

    def __str__(self) -> str:
        return self.name

    @property
    def terms(self) -> list[str]:
        return [self.name, *(t.strip() for t in self.also_matches.split(",") if t.strip())]


class Ingredient(models.Model):
    """An active ingredient (RxNorm IN), with the classes it belongs to."""

    name = models.CharField(max_length=80, unique=True)
    rxnorm_code = models.CharField("RxNorm code (IN)", max_length=12, blank=True)
    classes = models.ManyToManyField(DrugClass, blank=True, related_name="ingredients")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track(**tracked_history("AllergyHistory"))
class Allergy(models.Model):
    """One of a patient's allergies. Removed ones are kept (with who, when and why), never deleted.

    The patient row keeps a one-line-per-allergy summary of the active ones (Patient.allergies,
    written by backoffice.allergies with every change): every banner and list reads it without a
    query of its own, and the queue's cached rows notice the change (a new row version).
    """

    class Kind(models.TextChoices):
        INGREDIENT = "ingredient", "Drug (ingredient)"
        DRUG_CLASS = "drug_class", "Drug class"
        FOOD = "food", "Food"
        LATEX = "latex", "Latex"
        OTHER = "other", "Other"

    class Severity(models.TextChoices):
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe (anaphylaxis)"
        UNKNOWN = "unknown", "Not known"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergy_records")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    ingredient = models.ForeignKey(Ingredient, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    drug_class = models.ForeignKey(DrugClass, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    allergen = models.CharField(max_length=120, help_text="As shown on the banner: the drug, class, food or thing.")
    reaction = models.CharField(max_length=120, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.UNKNOWN)
    # No one: brought over from the text the patient's record had before allergies were a list.
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    removed_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["recorded_at", "id"]
        verbose_name_plural = "allergies"
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="ingredient") & Q(ingredient__isnull=False) & Q(drug_class__isnull=True))
                | (Q(kind="drug_class") & Q(drug_class__isnull=False) & Q(ingredient__isnull=True))
                | (~Q(kind__in=["ingredient", "drug_class"]) & Q(ingredient__isnull=True) & Q(drug_class__isnull=True)),
                name="allergy_kind_matches_its_reference",
            ),
            models.CheckConstraint(condition=~Q(allergen=""), name="allergy_names_its_allergen"),
            models.CheckConstraint(
                condition=Q(removed_at__isnull=True) | (Q(removed_by__isnull=False) & ~Q(removed_reason="")),
                name="allergy_removed_with_who_and_why",
            ),
        ]
        indexes = [
            models.Index(fields=["patient"], condition=Q(removed_at__isnull=True), name="allergy_active_idx"),
        ]

    def __str__(self) -> str:
        return self.summary_line

    @property
    def summary_line(self) -> str:
        severity = " (severe)" if self.severity == self.Severity.SEVERE else ""
        return f"{self.allergen} — {self.reaction}{severity}" if self.reaction else f"{self.allergen}{severity}"


class Equipment(models.Model):
    """A kind of equipment a station can have and a procedure can require."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "equipment"

    def __str__(self) -> str:
        return self.name


@pghistory.track(**tracked_history("StationHistory"))
class Station(models.Model):
    """A procedure room, phlebotomy chair or lab bench in the back office."""

    class Kind(models.TextChoices):
        PROCEDURE_ROOM = "procedure_room", "Procedure room"
        PHLEBOTOMY = "phlebotomy", "Phlebotomy station"
        LAB_BENCH = "lab_bench", "Lab bench"
        TREATMENT_BAY = "treatment_bay", "Treatment bay"

    code = models.SlugField(max_length=20, unique=True, help_text="Short code used in URLs and on door signs.")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=20, choices=StationState.choices, default=StationState.READY, editable=False)
    equipment = models.ManyToManyField(Equipment, blank=True, related_name="stations")
    is_active = models.BooleanField(default=True)
    state_changed_at = models.DateTimeField(default=timezone.now, editable=False)

    STATUS_FIELD = "state"  # for backoffice.transitions

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StationEvent(TransitionEvent):
    """An append-only record of a station's state change (occupied, turnover, ready).

    An arrival or a departure points at the patient (``patient``), never names them in the note, so
    a page listing station events knows whose data it shows and logs it. Turnovers have none.
    """

    class Action(models.TextChoices):
        OCCUPIED = "occupied", "Patient arrived"
        VACATED = "vacated", "Patient left"
        TURNED_OVER = "turned_over", "Cleaned and restocked"

    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    # Who arrived or left. Rows from before this field have it filled from their note where that named an
    # MRN (migration 0014); a patient with a station event is never deleted (PROTECT), like one with a handoff.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    from_status = models.CharField(max_length=20, choices=StationState.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=StationState.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.station}: {self.from_status} → {self.to_status}"


class ExamRoom(models.Model):
    """A front-of-clinic exam room a handoff comes from."""

    name = models.CharField(max_length=40, unique=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HandoffQuerySet(models.QuerySet["Handoff"]):
    def open(self) -> "HandoffQuerySet":
        return self.filter(status__in=OPEN_STATUSES)

    def for_lists(self) -> "HandoffQuerySet":
        return self.select_related("patient", "ordering_clinician", "claimed_by", "station", "exam_room")


@pghistory.track(**tracked_history("HandoffHistory"))
class Handoff(models.Model):
    """A patient handed from the exam room to the back office, with what was ordered."""

    class Mobility(models.TextChoices):
        INDEPENDENT = "independent", "Walks independently"
        ASSISTED = "assisted", "Walks with assistance"
        WALKER = "walker", "Cane or walker"
        WHEELCHAIR = "wheelchair", "Wheelchair"
        STRETCHER = "stretcher", "Stretcher"

    class Isolation(models.TextChoices):
        NONE = "none", "None"
        CONTACT = "contact", "Contact precautions"
        DROPLET = "droplet", "Droplet precautions"
        AIRBORNE = "airborne", "Airborne precautions"
        CONTACT_ENTERIC = "enteric", "Contact-enteric precautions"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="handoffs")
    ordering_clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    exam_room = models.ForeignKey(ExamRoom, on_delete=models.PROTECT, related_name="+")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.ROUTINE)
    clinical_note = models.TextField(blank=True, max_length=2000)
    diagnosis_codes = ArrayField(
        models.CharField(max_length=8),
        default=list,
        blank=True,
        help_text="ICD-10-CM codes for the orders (the reason sent to a reference lab), checked by backoffice.icd10.",
    )

    interpreter_needed = models.BooleanField(default=False)
    interpreter_language = models.CharField(max_length=40, blank=True)
    companion = models.CharField(
        "Escort or companion", max_length=120, blank=True, help_text="Who came with the patient, e.g. 'Daughter (Ana)'."
    )
    aide_needed = models.BooleanField("Needs an aide", default=False)
    mobility = models.CharField(max_length=20, choices=Mobility.choices, default=Mobility.INDEPENDENT)
    isolation = models.CharField(max_length=20, choices=Isolation.choices, default=Isolation.NONE)

    status = models.CharField(
        max_length=20, choices=HandoffStatus.choices, default=HandoffStatus.WAITING, editable=False
    )
    station = models.ForeignKey(Station, on_delete=models.PROTECT, null=True, blank=True, related_name="handoffs")
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    identity_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    identity_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    identity_method = models.CharField(max_length=20, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancel_reason = models.CharField(max_length=200, blank=True, editable=False)
    # Why the back office handed the patient back (backoffice.services.handoff_hand_back), while it stands.
    hand_back_reason = models.CharField(max_length=20, choices=HandBackReason.choices, blank=True, editable=False)
    # Set by the background check (backoffice.tasks.flag_overdue_handoffs) to the moment a waiting handoff
    # passed its QUEUE_OVERDUE_MINUTES_* threshold; cleared once it is no longer waiting past it.
    overdue_since = models.DateTimeField(null=True, blank=True, editable=False)
    # When the patient was recorded as gone from the clinic (backoffice.services.handoff_patient_left):
    # off the "in the clinic now" board; what was still pending went to the clinician's follow-ups.
    patient_left_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = HandoffQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "created_at"]
        indexes = [
            # The queue and the boards read only open work; history never enters this index.
            models.Index(
                fields=["priority", "created_at"],
                name="handoff_open_queue_idx",
                condition=Q(status__in=OPEN_STATUSES),
            ),
            models.Index(fields=["patient", "-created_at"], name="handoff_patient_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in HandoffStatus]), name="handoff_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[*IDENTIFIED_STATUSES, HandoffStatus.CLAIMED, HandoffStatus.COMPLETED])
                | Q(claimed_by__isnull=False),
                name="handoff_claimed_has_claimer",
            ),
            models.CheckConstraint(
                condition=~Q(
                    status__in=[HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS, HandoffStatus.COMPLETED]
                )
                | Q(identity_verified_at__isnull=False),
                name="handoff_work_needs_identity",
            ),
            models.CheckConstraint(
                condition=~Q(interpreter_needed=True) | ~Q(interpreter_language=""),
                name="handoff_interpreter_has_language",
            ),
            # One patient can occupy a station at a time.
            models.UniqueConstraint(
                fields=["station"],
                condition=Q(status__in=OPEN_STATUSES) & Q(station__isnull=False),
                name="handoff_one_open_per_station",
            ),
        ]
        permissions = [
            ("claim_handoff", "Can claim a handoff and work it"),
            ("cancel_handoff", "Can cancel a handoff"),
            ("view_board", "Can view the supervisor board"),
            ("manage_station", "Can turn over stations"),
            ("view_clinic_now", "Can view the in-the-clinic-now board"),
            ("record_patient_left", "Can record that a patient left the clinic"),
        ]

    def __str__(self) -> str:
        return f"{self.get_priority_display()} handoff for {self.patient.full_name}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_stat(self) -> bool:
        return self.priority == Priority.STAT

    def waiting_minutes(self, now: datetime | None = None) -> int:
        return whole_minutes(self.created_at, self.closed_at or now or timezone.now())

    @property
    def waiting_label(self) -> str:
        return minutes_label(self.waiting_minutes())

    @property
    def overdue_minutes(self) -> int:
        """The threshold for this handoff's priority (QUEUE_OVERDUE_MINUTES_STAT or _ROUTINE)."""
        return settings.QUEUE_OVERDUE_MINUTES_STAT if self.is_stat else settings.QUEUE_OVERDUE_MINUTES_ROUTINE

    def is_overdue(self, now: datetime | None = None) -> bool:
        """Waiting, unclaimed, past its threshold: the queue and the board highlight it.

        Only a waiting handoff counts; once someone claims the patient they have an owner, and the
        flag clears. The background check sets overdue_since; between its runs (every minute) the
        live computation answers, so a row turns red on time even if the worker is behind.
        """
        if self.status != HandoffStatus.WAITING:
            return False
        if self.overdue_since is not None:
            return True
        return self.waiting_minutes(now) >= self.overdue_minutes

    @property
    def need_badges(self) -> list[tuple[str, str]]:
        """Short labels for the patient's needs, with a style, for the queue and banner."""
        badges: list[tuple[str, str]] = []
        if self.isolation != self.Isolation.NONE:
            badges.append((self.get_isolation_display(), "isolation"))
        if self.interpreter_needed:
            badges.append((f"Interpreter: {self.interpreter_language}", "interpreter"))
        if self.mobility != self.Mobility.INDEPENDENT:
            badges.append((self.get_mobility_display(), "mobility"))
        if self.aide_needed:
            badges.append(("Needs aide", "aide"))
        if self.companion:
            badges.append((f"With {self.companion}", "companion"))
        return badges


class HandoffEvent(TransitionEvent):
    """An append-only record of something done to a handoff: who, when, from, to, why."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CLAIMED = "claimed", "Claimed"
        RELEASED = "released", "Released to the queue"
        STATION_ASSIGNED = "station_assigned", "Station assigned"
        IDENTITY_VERIFIED = "identity_verified", "Identity verified"
        IDENTITY_MISMATCH = "identity_mismatch", "Identity check failed"
        STARTED = "started", "Work started"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        HANDED_BACK = "handed_back", "Handed back to the clinician"
        RESENT = "resent", "Sent back to the queue"
        FLAGGED_OVERDUE = "flagged_overdue", "Flagged overdue"
        ITEMS_ORDERED = "items_ordered", "Items ordered"
        RECOLLECT = "recollect", "Specimen to collect again"
        ITEMS_CANCELLED = "items_cancelled", "Items cancelled"
        PATIENT_LEFT = "patient_left", "Patient left the clinic"

    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=HandoffStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=HandoffStatus.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["handoff", "at"], name="handoffevent_handoff_idx")]


class AccessAction(models.TextChoices):
    VIEW = "view", "View"
    LIST = "list", "List"
    SEARCH = "search", "Search"
    PRINT = "print", "Print"
    EXPORT = "export", "Export"
    DENIED = "denied", "Denied attempt"


class AccessOutcome(models.TextChoices):
    OK = "ok", "OK"
    DENIED = "denied", "Denied"
    NOT_FOUND = "not_found", "Not found"


class AccessLog(models.Model):
    """One look at patient data: who saw which patients, what, how, when (UTC), from where, and the outcome.

    Append-only. Written by backoffice.audit.log.log_access; never edited, never deleted.
    """

    Action = AccessAction
    Outcome = AccessOutcome

    at = models.DateTimeField(default=timezone.now, editable=False)
    # PROTECT: a user with access rows is deactivated, never deleted (SET_NULL would be an UPDATE here).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="The username at the time, kept if it changes.")
    action = models.CharField(max_length=10, choices=AccessAction.choices)
    what = models.CharField(max_length=60, help_text="The page or record kind, e.g. 'handoff detail'.")
    object_ref = models.CharField(max_length=64, blank=True, help_text="The opaque id in the URL, e.g. a handoff UUID.")
    ip = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=AccessOutcome.choices, default=AccessOutcome.OK)
    patients = models.ManyToManyField(Patient, through="AccessLogPatient", related_name="+", blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["user", "-at"], name="accesslog_user_at_idx"),
            models.Index(fields=["-at"], name="accesslog_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=AccessAction.values), name="accesslog_action_valid"),
            models.CheckConstraint(condition=Q(outcome__in=AccessOutcome.values), name="accesslog_outcome_valid"),
        ]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.username or 'anonymous'} {self.action} {self.what} at {self.at:%Y-%m-%d %H:%M}"


class AccessLogPatient(models.Model):
    """A patient shown by one access: the access log's patient list, searchable by patient and time."""

    log = models.ForeignKey(AccessLog, on_delete=models.PROTECT, related_name="patient_rows", db_index=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+", db_index=False)
    # A copy of log.at: "who saw this patient, newest first" reads one index and never sorts.
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["patient", "-at"], name="accesslogpatient_patient_idx")]
        constraints = [
            # Also the index the audit page uses to fetch the patients of a page of log rows.
            models.UniqueConstraint(fields=["log", "patient"], name="accesslogpatient_once_per_log"),
        ]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.patient_id} in access {self.log_id}"


class RolePolicy(models.Model):
    """Per-role security rules an admin sets in Django admin (on top of OTP_REQUIRED_ROLES)."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="policy", verbose_name="role")
    require_second_factor = models.BooleanField(
        default=False, help_text="Members must confirm every sign-in with an authenticator app code."
    )

    class Meta:
        verbose_name = "role security policy"
        verbose_name_plural = "role security policies"

    def __str__(self) -> str:
        return f"{self.group.name}: {'second factor required' if self.require_second_factor else 'password only'}"


class AccountChangeKind(models.TextChoices):
    ACCOUNT_CREATED = "account_created", "Account created"
    ROLE_ADDED = "role_added", "Role added"
    ROLE_REMOVED = "role_removed", "Role removed"
    PERMISSION_GRANTED = "permission_granted", "Permission granted"
    PERMISSION_REVOKED = "permission_revoked", "Permission revoked"
    SUPERUSER_GRANTED = "superuser_granted", "Made superuser"
    SUPERUSER_REVOKED = "superuser_revoked", "Superuser removed"
    STAFF_GRANTED = "staff_granted", "Admin site access given"
    STAFF_REVOKED = "staff_revoked", "Admin site access removed"
    ACTIVATED = "activated", "Account activated"
    DEACTIVATED = "deactivated", "Account deactivated"
    PASSWORD_RESET = "password_reset", "Password set by someone else"
    PASSWORD_CHANGED = "password_changed", "Password changed by its owner"
    SECOND_FACTOR_ADDED = "second_factor_added", "Authenticator added"
    SECOND_FACTOR_CHANGED = "second_factor_changed", "Authenticator secret changed"
    SECOND_FACTOR_REMOVED = "second_factor_removed", "Authenticator removed"
    GROUP_CREATED = "group_created", "Role created"
    GROUP_RENAMED = "group_renamed", "Role renamed"
    GROUP_DELETED = "group_deleted", "Role deleted"
    GROUP_PERMISSION_ADDED = "group_permission_added", "Permission added to a role"
    GROUP_PERMISSION_REMOVED = "group_permission_removed", "Permission removed from a role"
    # Security events on the account, by its owner or someone using their password.
    SECOND_FACTOR_WRONG_CODE = "second_factor_wrong_code", "Wrong authenticator code"
    SESSION_ENDED = "session_ended", "Session ended by its owner"


class AccountChange(models.Model):
    """A change to who may do what: roles, permissions, passwords, authenticators, superuser and staff flags.

    Append-only, written by the signal receivers in backoffice.accounts.changes whatever made the
    change (admin, a page, the shell, a migration), and read by auditors on /audit/accounts/. Two
    security events on an account are written here too, by the pages where they happen: a wrong
    authenticator code (backoffice.accounts.views) and sessions ended by their owner
    (backoffice.accounts.sessions).
    """

    Kind = AccountChangeKind

    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)
    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    subject_username = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=30, choices=AccountChangeKind.choices)
    detail = models.CharField(max_length=200, blank=True, help_text="The role or permission concerned.")
    source = models.CharField(
        max_length=200, blank=True, help_text="The page that made the change; empty from a shell or a command."
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at"], name="accountchange_at_idx"),
            models.Index(fields=["subject", "-at"], name="accountchange_subject_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AccountChangeKind.values), name="accountchange_kind_valid"),
        ]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject_username or self.detail} at {self.at:%Y-%m-%d %H:%M}"


class BreakGlass(models.Model):
    """Emergency access to one patient's record by someone outside their care (HIPAA 164.312(a)(2)(ii)).

    A reason is required; the access ends at ``until`` (BREAK_GLASS_MINUTES after it was asked for).
    Append-only: a grant is never extended or edited, a new one is asked for. Every access row
    written under it is linked by a ``BreakGlassAccess``; supervisors and auditors see them all on
    /audit/break-glass/.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    username = models.CharField(max_length=150)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        permissions = [("break_glass", "Break the glass: see one patient's record in an emergency")]
        verbose_name = "break-glass access"
        indexes = [
            models.Index(fields=["-at"], name="breakglass_at_idx"),
            models.Index(fields=["user", "-until"], name="breakglass_user_until_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(until__gt=models.F("at")), name="breakglass_until_after_at"),
            models.CheckConstraint(condition=~Q(reason=""), name="breakglass_reason_required"),
        ]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.username} on patient {self.patient_id} at {self.at:%Y-%m-%d %H:%M}"

    def is_open(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) < self.until


class BreakGlassAccess(models.Model):
    """An access-log row written under a break-glass grant: the flag on that row. Append-only."""

    grant = models.ForeignKey(BreakGlass, on_delete=models.PROTECT, related_name="accesses", db_index=False)
    log = models.OneToOneField(AccessLog, on_delete=models.PROTECT, related_name="break_glass")
    at = models.DateTimeField(help_text="A copy of the access row's time.")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["grant", "at"], name="breakglassaccess_grant_idx")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"access {self.log_id} under break-glass {self.grant_id}"


class UserSession(AbstractBaseSession):
    """Django's database session, with who it belongs to and where it runs, for "Your sessions".

    Written by the session store (backoffice.accounts.sessions) from the session's own data each
    time the session is saved: the user, the client address and browser noted at sign-in, the
    sign-in time and the last activity the idle timeout counts. A session id rotated at sign-in or
    after the second factor is a new row carrying the same values, as Django moves the data.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    started = models.DateTimeField(null=True, blank=True, help_text="When its user signed in.")
    last_seen = models.DateTimeField(null=True, blank=True, help_text="Their last activity in it.")

    class Meta:
        verbose_name = "session"
        indexes = [
            models.Index(fields=["user", "-last_seen"], name="usersession_user_idx", condition=Q(user__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"session of user {self.user_id}"

    @classmethod
    def get_session_store_class(cls) -> Any:
        from backoffice.accounts.sessions import SessionStore

        return SessionStore
