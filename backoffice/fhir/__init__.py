"""The FHIR R4B read API (/fhir/): our rows as FHIR resources, for API clients with a bearer token.

It composes every domain app (procedures, specimens, lab), so like backoffice/pages it sits on the
top floor. ``builders`` turns rows into validated resources and knows nothing of HTTP; ``search``
holds each type's querysets and search parameters; ``capability`` states what works, from the same
table; ``auth`` checks tokens; ``views`` answers requests.
"""
