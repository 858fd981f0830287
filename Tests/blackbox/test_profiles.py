"""Core profiles against the real server: a write claiming a known R4 core profile (here
heartrate) and breaking it is refused with 422 naming the profile, the element and the rule;
$validate?profile= checks a resource that claims nothing; an unknown profile is no error."""

import copy
from urllib.parse import quote

from fhirtest import FHIR_JSON, assert_operation_outcome, base_url

HEARTRATE = "http://hl7.org/fhir/StructureDefinition/heartrate"
HEART_RATE = {
    "resourceType": "Observation",
    "meta": {"profile": [HEARTRATE]},
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 44, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
}


def diagnostics(response):
    return [issue.get("diagnostics", "") for issue in response.json().get("issue", [])]


def post(http, path, body):
    return http.post(f"{base_url()}/{path}", json=body, headers={"Content-Type": FHIR_JSON})


def test_a_conforming_heart_rate_is_stored_and_a_broken_one_refused(http):
    assert post(http, "Observation", HEART_RATE).status_code == 201
    broken = copy.deepcopy(HEART_RATE)
    broken["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]}
    response = post(http, "Observation", broken)
    assert_operation_outcome(response, 422)
    assert any(HEARTRATE in text and "slice 'HeartRateCode'" in text for text in diagnostics(response)), response.text
    wrong_unit = copy.deepcopy(HEART_RATE)
    wrong_unit["valueQuantity"]["code"] = "/s"
    response = post(http, "Observation", wrong_unit)
    assert_operation_outcome(response, 422)
    assert any("valueQuantity.code must be exactly" in text for text in diagnostics(response)), response.text


def test_validate_with_a_profile_parameter_and_unknown_profiles(http):
    bare = copy.deepcopy(HEART_RATE)
    del bare["meta"]
    bare["effectiveDateTime"] = "1999"
    response = post(http, f"Observation/$validate?profile={quote(HEARTRATE, safe='')}", bare)
    assert response.status_code == 200
    assert any("vs-1" in text for text in diagnostics(response)), response.text
    unknown = post(http, f"Observation/$validate?profile={quote('http://example.org/nope', safe='')}", bare)
    assert_operation_outcome(unknown, 400)
    claims_unknown = copy.deepcopy(HEART_RATE)
    claims_unknown["meta"]["profile"] = ["http://example.org/fhir/StructureDefinition/local-vitals"]
    assert post(http, "Observation", claims_unknown).status_code == 201
