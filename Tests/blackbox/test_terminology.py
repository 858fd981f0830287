"""Terminology operations against the real server: $expand, $lookup, $validate-code and $subsumes on
R4's code systems and value sets (compiled into the binary; the server reads no r4-core file)."""

import json
import os

from fhirtest import FHIR_JSON, assert_operation_outcome, base_url

GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
GENDER = "http://hl7.org/fhir/administrative-gender"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CORE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fhir", "r4-core")


def codes(body):
    return [entry["code"] for entry in body["expansion"].get("contains", [])]


def output(body, name):
    for parameter in body["parameter"]:
        if parameter["name"] == name:
            return next(value for key, value in parameter.items() if key.startswith("value"))
    return None


def source_codes(file_name):
    """The codes of an r4-core CodeSystem file, depth first, as the expansion lists them."""
    with open(os.path.join(CORE, file_name)) as handle:
        system = json.load(handle)
    found = []

    def walk(concepts):
        for concept in concepts:
            found.append(concept["code"])
            walk(concept.get("concept", []))

    walk(system["concept"])
    return found


def test_expand_by_url_matches_r4_core(http):
    response = http.get(f"{base_url()}/ValueSet/$expand", params={"url": GENDER_VS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "ValueSet" and body["url"] == GENDER_VS
    assert codes(body) == source_codes("CodeSystem-administrative-gender.json")
    assert body["expansion"]["total"] == 4
    assert all(entry["system"] == GENDER for entry in body["expansion"]["contains"])


def test_expand_pages_with_count_and_offset(http):
    url = "http://hl7.org/fhir/ValueSet/observation-status"
    expected = source_codes("CodeSystem-observation-status.json")
    seen = []
    for offset in range(0, len(expected), 3):
        body = http.get(f"{base_url()}/ValueSet/observation-status/$expand", params={"count": 3, "offset": offset}).json()
        assert body["expansion"]["total"] == len(expected) and body["expansion"]["offset"] == offset
        seen += codes(body)
    assert seen == expected
    filtered = http.post(f"{base_url()}/ValueSet/$expand", headers={"Content-Type": FHIR_JSON}, json={
        "resourceType": "Parameters",
        "parameter": [{"name": "url", "valueUri": url}, {"name": "filter", "valueString": "error"}]}).json()
    assert codes(filtered) == ["entered-in-error"]


def test_expand_refuses_what_it_cannot_list_and_bad_input(http):
    assert_operation_outcome(http.get(f"{base_url()}/ValueSet/observation-codes/$expand"), 422)
    assert_operation_outcome(http.get(f"{base_url()}/ValueSet/$expand", params={"url": "http://example.org/none"}), 404)
    assert_operation_outcome(http.get(f"{base_url()}/ValueSet/$expand"), 400)
    assert_operation_outcome(http.get(f"{base_url()}/ValueSet/$expand", params={"url": GENDER_VS, "count": "-1"}), 400)
    assert_operation_outcome(http.get(f"{base_url()}/ValueSet/$expand", params={"url": GENDER_VS, "filter": "x" * 5000}), 400)


def test_lookup_gives_display_and_parents(http):
    response = http.get(f"{base_url()}/CodeSystem/$lookup", params={"system": GENDER, "code": "female"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert output(body, "name") == "AdministrativeGender" and output(body, "display") == "Female"
    acute = http.get(f"{base_url()}/CodeSystem/$lookup", params={"system": ACT_CODE, "code": "ACUTE"}).json()
    parents = [part["valueCode"] for parameter in acute["parameter"] if parameter["name"] == "property"
               for part in parameter["part"][1:] if parameter["part"][0]["valueCode"] == "parent"]
    assert parents == ["IMP"]
    assert_operation_outcome(http.get(f"{base_url()}/CodeSystem/$lookup", params={"system": GENDER, "code": "nope"}), 404)


def test_validate_code_and_subsumes(http):
    params = {"url": GENDER_VS, "system": GENDER, "code": "male"}
    assert output(http.get(f"{base_url()}/ValueSet/$validate-code", params=params).json(), "result") is True
    params["code"] = "man"
    assert output(http.get(f"{base_url()}/ValueSet/$validate-code", params=params).json(), "result") is False
    subsumes = http.get(f"{base_url()}/CodeSystem/$subsumes", params={"system": ACT_CODE, "codeA": "IMP", "codeB": "ACUTE"})
    assert output(subsumes.json(), "outcome") == "subsumes"
