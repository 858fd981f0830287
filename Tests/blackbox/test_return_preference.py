"""What writes answer with (issue 17, "clients first"): the resource by default, as HAPI, Blaze,
Medplum and Aidbox answer; nothing or an OperationOutcome when the client asks
(`Prefer: return=minimal | OperationOutcome`); and IBM's empty body for every client of a server
started with `--default-return minimal`. `POST [type]` round-trips through fhirclient and
fhir.resources with no header of theirs."""

import os
import re
import tempfile

import pytest
import requests
from fhir.resources.R4B.observation import Observation as ResourcesObservation
from fhir.resources.R4B.patient import Patient as ResourcesPatient
from fhirclient.models.patient import Patient as ClientPatient
from fhirclient.server import FHIRServer

from fhirtest import FHIR_JSON, ID, base_url, check_response, free_port, start_server, unique, version_of

JSON = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def assert_created(response, resource_type):
    """A 201 whose body is the stored resource, agreeing with Location and ETag; the body."""
    assert response.status_code == 201, response.text[:300]
    body = response.json()
    assert body["resourceType"] == resource_type
    assert re.fullmatch(ID, body["id"])
    assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"]
    assert response.headers["Location"] == f"{base_url()}/{resource_type}/{body['id']}/_history/1"
    assert version_of(response.headers["ETag"]) == 1
    return body


def test_create_update_patch_answer_the_resource_by_default(http):
    family = unique("Default")
    body = assert_created(http.post(f"{base_url()}/Patient", json={"resourceType": "Patient", "name": [{"family": family}]},
                                    headers=JSON), "Patient")
    assert body["name"][0]["family"] == family
    assert http.get(f"{base_url()}/Patient/{body['id']}").json() == body

    body["active"] = True
    updated = http.put(f"{base_url()}/Patient/{body['id']}", json=body, headers=JSON)
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2" and updated.json()["active"] is True

    patched = http.patch(f"{base_url()}/Patient/{body['id']}", json=[{"op": "add", "path": "/gender", "value": "other"}],
                         headers={"Content-Type": "application/json-patch+json"})
    assert patched.status_code == 200 and patched.json()["gender"] == "other" and patched.json()["meta"]["versionId"] == "3"

    # A conditional create that finds its match answers 200 with the stored resource.
    matched = http.post(f"{base_url()}/Patient", json={"resourceType": "Patient"},
                        headers={**JSON, "If-None-Exist": f"_id={body['id']}"})
    assert matched.status_code == 200 and matched.json()["id"] == body["id"] and matched.json()["gender"] == "other"


@pytest.mark.parametrize("preference", ["minimal", "OperationOutcome"])
def test_prefer_overrides_the_default(http, preference):
    response = http.post(f"{base_url()}/Patient", json={"resourceType": "Patient"}, headers={**JSON, "Prefer": f"return={preference}"})
    assert response.status_code == 201
    assert re.fullmatch(re.escape(base_url()) + rf"/Patient/{ID}/_history/1", response.headers["Location"])
    if preference == "minimal":
        assert response.content == b""
    else:
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "information"


def test_transaction_entries_follow_the_preference(http):
    family = unique("Bundle")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:9d3a4d4e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": family}]}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                      "subject": {"reference": "urn:uuid:9d3a4d4e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    default = http.post(base_url(), json=bundle, headers=JSON).json()
    assert [e["response"]["status"] for e in default["entry"]] == ["201 Created", "201 Created"]
    patient, observation = (e["resource"] for e in default["entry"])
    assert patient["name"][0]["family"] == family and observation["subject"]["reference"] == f"Patient/{patient['id']}"

    minimal = http.post(base_url(), json=bundle, headers={**JSON, "Prefer": "return=minimal"}).json()
    assert all("resource" not in e and "outcome" not in e["response"] for e in minimal["entry"])
    outcomes = http.post(base_url(), json=bundle, headers={**JSON, "Prefer": "return=OperationOutcome"}).json()
    assert all("resource" not in e and e["response"]["outcome"]["resourceType"] == "OperationOutcome" for e in outcomes["entry"])


def test_fhirclient_create_round_trips():
    server = FHIRServer(None, base_uri=base_url())
    server.session.hooks["response"].append(check_response)
    family = unique("Client")
    created = ClientPatient({"resourceType": "Patient", "name": [{"family": family}], "birthDate": "1970-01-02"}, strict=True)
    answer = created.create(server)  # fhirclient returns the response body, None when empty
    assert answer is not None, "a create answered with an empty body"
    stored = ClientPatient(answer, strict=True)
    assert stored.id and stored.meta.versionId == "1"
    assert stored.name[0].family == family and stored.birthDate.isostring == "1970-01-02"
    assert ClientPatient.read(stored.id, server).as_json() == answer


def test_fhir_resources_models_round_trip(http):
    family = unique("Models")
    patient = ResourcesPatient(name=[{"family": family, "given": ["Grace"]}], gender="female", birthDate="1906-12-09")
    response = http.post(f"{base_url()}/Patient", data=patient.model_dump_json(), headers=JSON)
    stored = ResourcesPatient.model_validate(assert_created(response, "Patient"))
    assert stored.name[0].family == family and stored.name[0].given == ["Grace"]
    assert stored.gender == "female" and str(stored.birthDate) == "1906-12-09"

    observation = ResourcesObservation(status="final", code={"text": "heart rate"}, subject={"reference": f"Patient/{stored.id}"},
                                       valueQuantity={"value": 72, "unit": "/min"})
    answer = assert_created(http.post(f"{base_url()}/Observation", data=observation.model_dump_json(), headers=JSON), "Observation")
    assert ResourcesObservation.model_validate(answer).valueQuantity.value == 72


@pytest.fixture
def minimal_server(tmp_path):
    """A second server, on a database of its own, started with --default-return minimal."""
    if "CADUCEUS_BIN" not in os.environ:
        pytest.skip("set CADUCEUS_BIN (Scripts/blackbox.sh does)")
    log = open(tmp_path / "server.log", "wb")
    with tempfile.TemporaryDirectory() as directory:
        process, base = start_server(os.path.join(directory, "minimal.sqlite"), free_port(), log, "--default-return", "minimal")
        try:
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()


def test_default_return_minimal_keeps_ibms_empty_body(minimal_server):
    created = requests.post(f"{minimal_server}/Patient", json={"resourceType": "Patient"}, headers=JSON, timeout=30)
    assert created.status_code == 201 and created.content == b""
    location = created.headers["Location"]
    asked = requests.post(f"{minimal_server}/Patient", json={"resourceType": "Patient"},
                          headers={**JSON, "Prefer": "return=representation"}, timeout=30)
    assert asked.status_code == 201 and asked.json()["meta"]["versionId"] == "1"
    rid = location.split("/")[-3]
    assert requests.get(f"{minimal_server}/Patient/{rid}", headers=JSON, timeout=30).status_code == 200
