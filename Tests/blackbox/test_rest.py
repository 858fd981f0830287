"""The rest of the REST contract over plain requests: metadata, representations, history."""

import time

from fhirtest import FHIR_JSON, assert_http_date, base_url, version_of

JSON = {"Content-Type": FHIR_JSON}


def create(http, resource):
    response = http.post(f"{base_url()}/{resource['resourceType']}", json=resource,
                         headers={**JSON, "Prefer": "return=representation"})
    assert response.status_code == 201
    return response


def test_metadata(http):
    response = http.get(f"{base_url()}/metadata")
    assert response.status_code == 200
    cs = response.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["rest"][0]["mode"] == "server"


def test_create_returns_representation_on_request(http):
    response = create(http, {"resourceType": "Observation", "status": "final", "code": {"text": "heart rate"},
                             "valueQuantity": {"value": 72, "unit": "/min"}})
    body = response.json()
    assert response.headers["Location"] == f"{base_url()}/Observation/{body['id']}/_history/1"
    assert version_of(response.headers["ETag"]) == 1
    assert_http_date(response.headers.get("Last-Modified"))
    assert body["meta"]["versionId"] == "1"
    assert body["valueQuantity"]["value"] == 72

    read = http.get(f"{base_url()}/Observation/{body['id']}")
    assert read.status_code == 200
    assert read.headers["Content-Type"].startswith(FHIR_JSON)
    assert version_of(read.headers["ETag"]) == 1
    assert read.json() == body


def test_delete_is_204_then_410(http):
    body = create(http, {"resourceType": "Patient"}).json()
    url = f"{base_url()}/Patient/{body['id']}"
    deleted = http.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert http.get(url).status_code == 410
    # The old version stays readable.
    assert http.get(f"{url}/_history/1").status_code == 200


def test_type_and_system_history_since(http):
    first = create(http, {"resourceType": "Patient", "active": True}).json()
    time.sleep(0.05)  # so that the second's lastUpdated is strictly later
    second = create(http, {"resourceType": "Patient", "active": False}).json()
    since = second["meta"]["lastUpdated"]

    bundle = http.get(f"{base_url()}/Patient/_history", params={"_since": since}).json()
    assert bundle["type"] == "history"
    ids = {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}
    assert second["id"] in ids and first["id"] not in ids

    bundle = http.get(f"{base_url()}/_history", params={"_since": since, "_count": 1}).json()
    assert bundle["type"] == "history"
    assert len(bundle.get("entry", [])) == 1
    for entry in bundle["entry"]:
        assert "request" in entry and "fullUrl" in entry


def test_tenants_are_separated(http):
    """X-FHIR-TENANT-ID selects a database of the tenant's own (declared with serve --tenant,
    created on first use); an undeclared tenant is refused without creating anything."""
    tenant = {"X-FHIR-TENANT-ID": "blackbox_tenant"}
    response = http.post(f"{base_url()}/Patient", json={"resourceType": "Patient", "gender": "other"},
                         headers={**JSON, **tenant})
    assert response.status_code == 201
    location = response.headers["Location"]
    assert http.get(location, headers=tenant).status_code == 200
    assert http.get(location).status_code == 404
    assert http.get(location, headers={"X-FHIR-TENANT-ID": "another_tenant"}).status_code == 404
    assert http.get(f"{base_url()}/Patient", headers={"X-FHIR-TENANT-ID": "no/such"}).status_code == 400
    undeclared = http.get(f"{base_url()}/Patient", headers={"X-FHIR-TENANT-ID": "never_declared"})
    assert undeclared.status_code == 400 and undeclared.json()["resourceType"] == "OperationOutcome"


def test_transaction_bundle(http):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555",
         "resource": {"resourceType": "Patient", "gender": "female"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                      "subject": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    response = http.post(base_url(), json=bundle, headers=JSON)
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "transaction-response"
    patient = result["entry"][0]["response"]["location"].split("/_history")[0]
    observation = http.get(f"{base_url()}/{result['entry'][1]['response']['location'].split('/_history')[0]}").json()
    assert observation["subject"]["reference"] == patient
