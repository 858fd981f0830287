"""The two curl commands from the README, run verbatim except for the base URL and `-si`."""

import re

from fhirtest import ID, assert_http_date, base_url, parse_json_body, run_curl, validating_session

README_BASE = "http://localhost:9080/fhir-server/api/v4"

README_CREATE = """curl -X POST "http://localhost:9080/fhir-server/api/v4/AllergyIntolerance" -H "accept: */*" -H "Content-Type: application/fhir+json" -d '{"resourceType": "AllergyIntolerance", "meta": {"tag": [{"code": "fba/minimal"}]}, "clinicalStatus": {"coding": [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}]}, "patient": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}'"""

README_SEARCH = """curl "http://localhost:9080/fhir-server/api/v4/AllergyIntolerance\""""


def as_test_command(readme_command):
    assert readme_command.startswith("curl ")
    return "curl -si " + readme_command[len("curl "):].replace(README_BASE, base_url())


def test_readme_create():
    status, headers, body = run_curl(as_test_command(README_CREATE))
    assert status == 201
    created = parse_json_body(headers, body)  # the server's default: the stored resource
    location = headers.get("location", "")
    m = re.fullmatch(re.escape(base_url()) + rf"/AllergyIntolerance/({ID})/_history/1", location)
    assert m, f"Location {location!r}"
    assert headers.get("etag") == 'W/"1"'
    assert_http_date(headers.get("last-modified"))

    with validating_session() as http:
        stored = http.get(location)
        assert stored.status_code == 200
        resource = stored.json()
    assert resource == created
    assert resource["id"] == m.group(1)
    assert resource["meta"]["versionId"] == "1"
    assert {"code": "fba/minimal"} in resource["meta"]["tag"]
    assert resource["patient"]["extension"][0]["valueCode"] == "unknown"


def test_readme_search():
    run_curl(as_test_command(README_CREATE))  # at least one to find
    status, headers, body = run_curl(as_test_command(README_SEARCH))
    assert status == 200
    bundle = parse_json_body(headers, body)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert isinstance(bundle.get("total"), int) and bundle["total"] >= 1
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert "_count=" in links["self"] and "_page=" in links["self"], links["self"]
    assert bundle["entry"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert resource["resourceType"] == "AllergyIntolerance"
        assert entry["fullUrl"] == f"{base_url()}/AllergyIntolerance/{resource['id']}"
        assert entry.get("search", {}).get("mode", "match") == "match"
