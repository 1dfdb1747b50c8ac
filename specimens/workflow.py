"""Allowed status moves for specimens, as data: the chain of custody.

Readable and testable without a database; specimens.services moves a status only through
backoffice.transitions.move with the SPECIMEN table, and nothing else assigns one.

    labelled ──► collected ──► in transit ──► received ──► in testing ──► done ──► stored ──► disposed
        │            │              │             │  │          │                     ▲
        │            │              │             │  └─► stored ┼─────────────────────┘
        │            └──────────────┴─────────────┴─────────────┴──► rejected ──► disposed
        │                                         └──► shipped (handed to the courier at the send-out desk)
        └──► not collected (a failed draw, with its reason)

A label is printed at the bedside when collection starts ("labelled"); the specimen counts as
collected only once its label and the patient's wristband were checked against each other.
"""

from dataclasses import dataclass

from django.db import models

from backoffice.workflow import Table


class SpecimenStatus(models.TextChoices):
    LABELLED = "labelled", "Labelled, not yet verified"
    COLLECTED = "collected", "Collected"
    IN_TRANSIT = "in_transit", "In transit"
    RECEIVED = "received", "Received"
    IN_TESTING = "in_testing", "In testing"
    DONE = "done", "Testing done"
    STORED = "stored", "Stored"
    DISPOSED = "disposed", "Disposed"
    REJECTED = "rejected", "Rejected"
    SHIPPED = "shipped", "Shipped to a reference lab"
    NOT_COLLECTED = "not_collected", "Not collected"


class Location(models.TextChoices):
    """Where a specimen is: each hand-over moves it from one of these to another."""

    BEDSIDE = "bedside", "At the patient's station"
    IN_HOUSE_BENCH = "bench", "In-house lab bench"
    SEND_OUT_DESK = "send_out", "Send-out desk"
    STORAGE = "storage", "Specimen storage"
    DISPOSED = "disposed", "Disposed"
    REFERENCE_LAB = "reference_lab", "At the reference lab"


class CollectionMethod(models.TextChoices):
    VENIPUNCTURE = "venipuncture", "Venipuncture"
    FINGERSTICK = "fingerstick", "Fingerstick (capillary)"
    CLEAN_CATCH = "clean_catch", "Clean-catch midstream urine"
    SWAB = "swab", "Swab"


class Handling(models.TextChoices):
    ROOM_TEMPERATURE = "room", "Room temperature"
    REFRIGERATED = "refrigerated", "Refrigerated (2 to 8 °C)"
    FROZEN = "frozen", "Frozen (-20 °C or colder)"


class FailedDrawReason(models.TextChoices):
    PATIENT_REFUSED = "refused", "Patient refused"
    NO_VEIN = "no_vein", "No suitable vein"
    FAINTED = "fainted", "Patient fainted or felt unwell"
    NOT_ENOUGH = "not_enough", "Could not obtain enough"
    OTHER = "other", "Other (see note)"


@dataclass(frozen=True)
class BodySite:
    """Where on the patient a specimen is taken, coded in SNOMED CT (body structure); the side in words."""

    key: str
    label: str
    snomed_code: str
    methods: frozenset[str]


_VEIN, _FINGER, _SWAB = (
    frozenset({CollectionMethod.VENIPUNCTURE}),
    frozenset({CollectionMethod.FINGERSTICK}),
    frozenset({CollectionMethod.SWAB}),
)
# The sites a back office draws from. 49852007 Structure of median cubital vein, 7569003 Finger
# structure, 31389004 Oropharyngeal structure, 71836000 Nasopharyngeal structure, 1797002 Naris.
BODY_SITES: tuple[BodySite, ...] = (
    BodySite("median_cubital_left", "Left arm, median cubital vein", "49852007", _VEIN),
    BodySite("median_cubital_right", "Right arm, median cubital vein", "49852007", _VEIN),
    BodySite("finger_left", "Left hand, finger", "7569003", _FINGER),
    BodySite("finger_right", "Right hand, finger", "7569003", _FINGER),
    BodySite("oropharynx", "Throat (oropharynx)", "31389004", _SWAB),
    BodySite("nasopharynx", "Nasopharynx", "71836000", _SWAB),
    BodySite("nares", "Anterior nares", "1797002", _SWAB),
)
BODY_SITES_BY_KEY: dict[str, BodySite] = {site.key: site for site in BODY_SITES}


S = SpecimenStatus

SPECIMEN_MOVES: dict[str, frozenset[str]] = {
    S.LABELLED: frozenset({S.COLLECTED, S.NOT_COLLECTED}),
    S.COLLECTED: frozenset({S.IN_TRANSIT, S.RECEIVED, S.REJECTED}),
    S.IN_TRANSIT: frozenset({S.RECEIVED, S.REJECTED}),
    # A send-out specimen leaves from the send-out desk with the courier; the reference lab keeps it.
    S.RECEIVED: frozenset({S.IN_TESTING, S.STORED, S.REJECTED, S.SHIPPED}),
    S.IN_TESTING: frozenset({S.DONE, S.STORED, S.REJECTED}),
    S.DONE: frozenset({S.STORED, S.DISPOSED}),
    S.STORED: frozenset({S.IN_TESTING, S.DISPOSED}),
    # A rejected specimen is kept on record; only its disposal is still to be recorded (CLIA 493.1283).
    S.REJECTED: frozenset({S.DISPOSED}),
    S.DISPOSED: frozenset(),
    S.SHIPPED: frozenset(),
    S.NOT_COLLECTED: frozenset(),
}

SPECIMEN = Table(label="specimen", states=SpecimenStatus, moves=SPECIMEN_MOVES)

# Drawn (in the back office's hands, or shipped to a reference lab): it no longer needs the patient.
COLLECTED_STATUSES: tuple[str, ...] = (
    S.COLLECTED,
    S.IN_TRANSIT,
    S.RECEIVED,
    S.IN_TESTING,
    S.DONE,
    S.STORED,
    S.SHIPPED,
)
# Still to be received by the bench or the send-out desk: the tracking list's "to receive".
TO_RECEIVE_STATUSES: tuple[str, ...] = (S.COLLECTED, S.IN_TRANSIT)
# Where a specimen may be received.
RECEIVING_LOCATIONS: tuple[str, ...] = (Location.IN_HOUSE_BENCH, Location.SEND_OUT_DESK)
