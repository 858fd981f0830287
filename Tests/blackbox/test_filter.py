"""`_filter` against the real server: logic, chains, paging links and the 400 of a syntax error."""

from fhirtest import FHIR_JSON, assert_operation_outcome, base_url, unique

JSON = {"Content-Type": FHIR_JSON}


def ids(http, path, filter_text, **params):
    response = http.get(f"{base_url()}/{path}", params={"_filter": filter_text, "_count": 100, **params})
    assert response.status_code == 200, response.text[:300]
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []))


def test_filter_logic_and_chains(http):
    family = unique("Filter")
    made = {}
    for given, gender, birth in [("ada", "female", "1815-12-10"), ("alan", "male", "1912-06-23"), ("grace", "female", "1906-12-09")]:
        body = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "gender": gender, "birthDate": birth}
        made[given] = http.post(f"{base_url()}/Patient", json=body, headers=JSON).json()["id"]
    observation = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                   "subject": {"reference": f"Patient/{made['grace']}"}, "valueQuantity": {"value": 72}}
    obs_id = http.post(f"{base_url()}/Observation", json=observation, headers=JSON).json()["id"]

    assert ids(http, "Patient", f"family eq {family} and gender eq female") == sorted([made["ada"], made["grace"]])
    assert ids(http, "Patient", f'family eq "{family}" and (given eq alan or birthdate lt 1900)') == sorted([made["ada"], made["alan"]])
    assert ids(http, "Patient", f"family eq {family} and not (gender eq female)") == [made["alan"]]
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert ids(http, "Patient", f"family eq {family} and gender in {gender}") == sorted(made.values())
    assert ids(http, "Patient", f"family eq {family} and gender ni {gender}") == []
    assert ids(http, "Observation", f"subject:Patient.family eq {family} and value-quantity gt 70") == [obs_id]
    assert ids(http, "Observation", f"subject.given eq grace and subject.family eq {family}") == [obs_id]

    # The next link carries the filter.
    first = http.get(f"{base_url()}/Patient", params={"_filter": f"family eq {family}", "_count": 2, "_total": "accurate"}).json()
    assert first["total"] == 3
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert len(http.get(following).json()["entry"]) == 1


def test_filter_errors_are_400_naming_the_place(http):
    body = assert_operation_outcome(http.get(f"{base_url()}/Patient", params={"_filter": "family eq x and"}), 400)
    assert "character 16" in body["issue"][0]["diagnostics"]
    body = assert_operation_outcome(http.get(f"{base_url()}/Patient", params={"_filter": "(" * 100 + "family eq x" + ")" * 100}), 400)
    assert "nests deeper" in body["issue"][0]["diagnostics"]
    assert_operation_outcome(http.get(f"{base_url()}/Patient", params={"_filter": "family eq x " * 500}), 400)
