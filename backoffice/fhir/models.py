"""API clients of the FHIR read API, and the searches whose pages they may still fetch."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

# The resource types a client may be given read access to, one scope each ("Observation.read").
RESOURCE_TYPES: tuple[str, ...] = (
    "Patient",
    "Practitioner",
    "Organization",
    "ServiceRequest",
    "Task",
    "Specimen",
    "Procedure",
    "Observation",
    "DiagnosticReport",
)
SCOPES: tuple[str, ...] = tuple(f"{name}.read" for name in RESOURCE_TYPES)


class ApiClient(models.Model):
    """A system that reads the FHIR API with a bearer token, on behalf of the staff member who owns it.

    Only the token's SHA-256 is stored; ``token_prefix`` (the part of the token before its secret)
    finds the row. The token is shown once, when issued (backoffice.fhir.admin).
    """

    name = models.CharField(max_length=80, unique=True, help_text="Named in the access log's rows, e.g. 'Clinic EHR'.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_clients",
        help_text="The staff member answerable for it: its reads are logged as theirs.",
    )
    scopes = ArrayField(
        models.CharField(max_length=40, choices=[(scope, scope) for scope in SCOPES]),
        default=list,
        blank=True,
        help_text="The resource types it may read.",
    )
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(help_text="Its token stops working then.")
    revoked = models.BooleanField(default=False, help_text="Ticked: its token no longer works.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"
        constraints = [
            models.CheckConstraint(condition=Q(scopes__contained_by=list(SCOPES)), name="apiclient_scopes_known"),
        ]

    def __str__(self) -> str:
        return self.name

    def may_read(self, resource_type: str) -> bool:
        return f"{resource_type}.read" in self.scopes


class StoredSearch(models.Model):
    """A search's parameters, kept server-side so its paging links carry only a random token.

    A POST search may name a patient (an MRN, a name): its next page must not put them in a URL.
    Only the client that ran the search can page through it, until ``expires_at``.
    """

    token = models.CharField(max_length=64, primary_key=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=40)
    params = models.JSONField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="storedsearch_expires_idx")]

    def __str__(self) -> str:
        return f"{self.resource_type} search until {self.expires_at:%H:%M}"
