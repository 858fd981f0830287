"""Error responses: right status, OperationOutcome body (validated by the session's hook)."""

import uuid

from fhirtest import FHIR_JSON, assert_operation_outcome, base_url, version_of


def test_unknown_id_is_404(http):
    assert_operation_outcome(http.get(f"{base_url()}/Patient/unknown-{uuid.uuid4().hex[:12]}"), 404)


def test_bad_json_is_400(http):
    response = http.post(f"{base_url()}/Patient", data=b'{"resourceType": "Patient",', headers={"Content-Type": FHIR_JSON})
    assert_operation_outcome(response, 400)


def test_unsupported_media_type_is_415(http):
    response = http.post(f"{base_url()}/Patient", data=b'{"resourceType": "Patient"}', headers={"Content-Type": "text/plain"})
    assert_operation_outcome(response, 415)


def test_wrong_resource_type_is_422(http):
    response = http.post(f"{base_url()}/Patient", json={"resourceType": "Observation", "status": "final",
                                                         "code": {"text": "x"}}, headers={"Content-Type": FHIR_JSON})
    assert_operation_outcome(response, 422)


def test_stale_if_match_is_412(http):
    url = f"{base_url()}/Patient"
    created = http.post(url, json={"resourceType": "Patient", "active": True}, headers={"Content-Type": FHIR_JSON,
                                                                                      "Prefer": "return=representation"})
    assert created.status_code == 201
    patient = created.json()
    assert version_of(created.headers["ETag"]) == 1
    instance = f"{url}/{patient['id']}"

    patient["active"] = False
    updated = http.put(instance, json=patient, headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'})
    assert updated.status_code == 200
    assert version_of(updated.headers["ETag"]) == 2

    stale = http.put(instance, json=patient, headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'})
    assert_operation_outcome(stale, 412)
    assert http.get(instance).json()["meta"]["versionId"] == "2"
