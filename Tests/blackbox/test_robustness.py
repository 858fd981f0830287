"""Nothing a client sends crashes the server or gets a 5xx: seeded random mutations of
valid requests (bodies, query strings, headers), bounded in count."""

import json
import random

import requests

from fhirtest import base_url

SEARCHES = [
    "Patient?name={v}", "Patient?birthdate={p}{d}", "Observation?code={v}|{v}", "Observation?value-quantity={p}{n}",
    "Observation?subject:Patient.name={v}", "Patient?_has:Observation:subject:code={v}", "Encounter?_include={v}",
    "Patient?_sort={v}", "Patient?_count={n}&_page={n}", "Observation?code-value-quantity={v}${p}{n}",
    "Patient?_elements={v}", "Patient?_summary={v}", "{T}?_id={v}", "Patient?identifier:{v}={v}", "_history?_since={d}",
    "{T}/{v}", "{T}/{v}/_history/{n}", "Patient/{v}/$everything?_type={T}", "{T}?_lastUpdated={p}{d}",
]
PIECES = ["", "x", "%", "%25", "\\", "|", "$", ",", ":", "'", '"', "..", "\u00e9", "9" * 30, "-1", "0", "1e400",
          "Patient", "Patient/1", "*", "%00", "a" * 300, "2020-13-45", "<script>", "null"]
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz"]
DATES = ["2020", "2020-02-30", "2020-01-01T10:00:00Z", "9999-12-31", "0001", "20", "2020-01-01T25:00", ""]
TYPES = ["Patient", "Observation", "Bundle", "Nope", "Parameters", "_search"]


def mutate(value, rng):
    """A random change somewhere in a JSON value."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        value[key] = mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.7:
        index = rng.randrange(len(value))
        value[index] = mutate(value[index], rng)
        return value
    return rng.choice([None, True, 0, -1, 1e308, "", "x" * 1000, [], {}, [[[]]], {"a": {"b": None}},
                       "2020-02-30", {"reference": "urn:uuid:nope"}, {"resourceType": "Patient"}])


def test_random_requests_never_crash_or_5xx():
    rng = random.Random(20261129)
    base = base_url()
    session = requests.Session()
    seeds = [
        {"resourceType": "Patient", "name": [{"family": "F", "given": ["G"]}], "birthDate": "1970-01-01",
         "identifier": [{"system": "urn:s", "value": "1"}], "telecom": [{"system": "email", "value": "a@b"}]},
        {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "1"}]},
         "subject": {"reference": "Patient/x"}, "valueQuantity": {"value": 1.5, "unit": "u"}},
        {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                          "subject": {"reference": "urn:uuid:a"}}, "request": {"method": "POST", "url": "Observation"}}]},
    ]
    failures = []
    for _ in range(400):
        kind = rng.random()
        if kind < 0.5:
            template = rng.choice(SEARCHES)
            path = template.format(v=rng.choice(PIECES), p=rng.choice(PREFIXES), d=rng.choice(DATES),
                                   n=rng.choice(["0", "1", "-5", "1000000000", "99999999999999999999", "x"]),
                                   T=rng.choice(TYPES))
            response = session.get(f"{base}/{path}", headers={"Prefer": rng.choice(["", "handling=strict"])})
        else:
            body = mutate(json.loads(json.dumps(rng.choice(seeds))), rng)
            text = json.dumps(body)
            if rng.random() < 0.1:
                text = text[: rng.randrange(len(text) + 1)]  # truncated JSON
            target = base if isinstance(body, dict) and body.get("resourceType") == "Bundle" else f"{base}/Patient"
            method = rng.choice(["POST", "PUT", "PATCH"]) if target != base else "POST"
            url = target if method == "POST" else f"{base}/Patient/fuzz-{rng.randrange(5)}"
            content_type = "application/json-patch+json" if method == "PATCH" else "application/fhir+json"
            response = session.request(method, url, data=text.encode(), headers={"Content-Type": content_type})
        if response.status_code >= 500:
            failures.append((response.request.method, response.request.url, response.status_code, response.text[:200]))
    assert not failures, failures[:5]
    assert session.get(f"{base}/metadata").status_code == 200


def test_long_incompressible_indexed_values_are_stored_and_found(http, base):
    """A name of 12,000 random letters: PostgreSQL refused its index entry (over about 2,700 bytes)
    and the create answered 500; index rows now keep its first 512 bytes."""
    rng = random.Random(20261207)
    family = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12000))
    created = http.post(f"{base}/Patient", json={"resourceType": "Patient", "name": [{"family": family}]},
                        headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    patient_id = created.headers["Location"].split("/Patient/")[1].split("/")[0]
    for value in (family[:30], family):
        # POST _search: the full value is longer than a request line may be.
        found = http.post(f"{base}/Patient/_search", data={"family": value})
        assert found.status_code == 200, found.text
        assert patient_id in [entry["resource"]["id"] for entry in found.json().get("entry", [])]
