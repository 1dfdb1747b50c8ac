"""The CapabilityStatement (/fhir/metadata): made from backoffice.fhir.search.TYPES, so it lists what works."""

from django.conf import settings
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from backoffice.fhir.search import TYPES

# fhir.resources' R4B models are FHIR 4.3.0: the version we say we speak.
FHIR_VERSION = "4.3.0"
RELEASED = "2026-12-04"


def capability_statement(*, base_url: str) -> CapabilityStatement:
    resources = []
    for rtype in TYPES.values():
        resources.append(
            {
                "type": rtype.name,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [
                    {"name": "_id", "type": "token", "documentation": "The resource's id."},
                    *({"name": p.name, "type": p.type, "documentation": p.documentation} for p in rtype.params),
                    {"name": "_count", "type": "number", "documentation": "Page size, 1 to 100 (20 if not given)."},
                ],
            }
        )
    return CapabilityStatement.model_validate(
        {
            "status": "active",
            "date": RELEASED,
            "kind": "instance",
            "publisher": settings.CLINIC_NAME,
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json"],
            "implementation": {"description": f"{settings.CLINIC_NAME}: read-only FHIR API", "url": base_url},
            "rest": [
                {
                    "mode": "server",
                    "documentation": (
                        "Read-only. Search by POST <type>/_search (form-encoded) for any parameter; GET <type>?... "
                        "takes only opaque ids, codes, statuses and dates, never identifier, name or birthdate. "
                        "Paging links carry an opaque token only."
                    ),
                    "security": {
                        "cors": False,
                        "description": "Authorization: Bearer <token> of an API client (created in admin), with a "
                        "<Type>.read scope per resource type. Sessions of the pages do not open the API.",
                    },
                    "resource": resources,
                }
            ],
        }
    )
