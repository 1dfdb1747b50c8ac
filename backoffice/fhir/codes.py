"""Code systems and identifier namespaces the resources use, in one place."""

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "urn:oid:2.16.840.1.113883.6.285"  # HCPCS Level II: codes that start with a letter (J1885, G0008)
UCUM = "http://unitsofmeasure.org"
NPI = "http://hl7.org/fhir/sid/us-npi"
CLIA = "urn:oid:2.16.840.1.113883.4.7"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
REJECT_REASON = "http://terminology.hl7.org/CodeSystem/v2-0490"
# Our own identifiers: the MRN on the wristband, the accession on the tube, the placer order number
# sent to a reference lab, and the handoff every order of one visit shares (ServiceRequest.requisition).
OUR = "urn:clinic-backoffice:"
MRN = OUR + "mrn"
ACCESSION = OUR + "accession"
PLACER = OUR + "placer-order-number"
HANDOFF = OUR + "handoff"
REJECTION_LOCAL = OUR + "rejection-reason"

# The clinic's own lab: the performer of in-house results and the owner of their tasks. A fixed id,
# since it is no row of ours.
IN_HOUSE_LAB_ID = "in-house-lab"

# HL7 v2 coding-system names a reference lab sends with a coded value (OBX-5), as FHIR systems.
V2_SYSTEMS = {"LN": LOINC, "SCT": SNOMED, "SNM": SNOMED, "SNOMED": SNOMED}


def procedure_code_system(code: str) -> str:
    return HCPCS if code[:1].isalpha() else CPT
