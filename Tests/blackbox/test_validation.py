"""Write validation beyond structure against the real server: core FHIRPath invariants and
Bundle rules refuse a write with 422 naming the constraint and its location; $validate reports."""

import uuid

from fhirtest import FHIR_JSON, assert_operation_outcome, base_url


def issues(response):
    return response.json().get("issue", [])


def test_probability_of_101_percent_is_refused_by_ras_2(http):
    body = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/x"},
            "prediction": [{"outcome": {"text": "death"}, "probabilityDecimal": 101}]}
    response = http.post(f"{base_url()}/RiskAssessment", json=body, headers={"Content-Type": FHIR_JSON})
    assert_operation_outcome(response, 422)
    assert any("ras-2" in issue["diagnostics"] and issue.get("expression") == ["RiskAssessment.prediction[0]"]
               for issue in issues(response)), response.text
    validated = http.post(f"{base_url()}/RiskAssessment/$validate", json=body, headers={"Content-Type": FHIR_JSON})
    assert validated.status_code == 200
    assert any(issue["severity"] == "error" and "ras-2" in issue["diagnostics"] for issue in issues(validated))


def test_duplicate_full_url_in_a_transaction_is_refused_by_bdl_7(http):
    full_url = f"urn:uuid:{uuid.uuid4()}"
    entry = {"fullUrl": full_url, "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]}
    response = http.post(base_url(), json=bundle, headers={"Content-Type": FHIR_JSON})
    assert_operation_outcome(response, 422)
    assert any("bdl-7" in issue["diagnostics"] for issue in issues(response)), response.text


def test_a_warning_does_not_refuse_a_write(http):
    # No narrative: dom-6 is a warning, which $validate reports and a create does not refuse.
    body = {"resourceType": "Patient", "gender": "female"}
    assert http.post(f"{base_url()}/Patient", json=body, headers={"Content-Type": FHIR_JSON}).status_code == 201
    validated = http.post(f"{base_url()}/Patient/$validate", json=body, headers={"Content-Type": FHIR_JSON})
    assert validated.status_code == 200
    assert any(issue["severity"] == "warning" and "dom-6" in issue["diagnostics"] for issue in issues(validated))
