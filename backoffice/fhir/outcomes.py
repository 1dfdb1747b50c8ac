"""Errors as FHIR OperationOutcome resources, with the HTTP status each one is answered with."""

from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome


class FhirError(Exception):
    """An error the API answers with an OperationOutcome: its HTTP status, issue code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad_request(message: str) -> FhirError:
    return FhirError(400, "invalid", message)


def not_found(message: str = "No such resource.") -> FhirError:
    return FhirError(404, "not-found", message)


def outcome(*, code: str, message: str, severity: str = "error") -> dict[str, Any]:
    resource = OperationOutcome.model_validate(
        {"issue": [{"severity": severity, "code": code, "diagnostics": message}]}
    )
    return resource.model_dump(mode="json", exclude_none=True)
