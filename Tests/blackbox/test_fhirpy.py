"""CRUD, history and paging through fhirpy's SyncFHIRClient."""

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from fhirtest import base_url, check_response, unique


@pytest.fixture
def client():
    # The server's defaults, no extra header: fhirpy takes the created resource (id, meta)
    # from the response body, which a create answers with unless the client asks otherwise.
    # requests_config goes to requests.request(), whose hooks validate every body.
    return SyncFHIRClient(
        base_url(),
        requests_config={"hooks": {"response": [check_response]}, "timeout": 30},
    )


def test_crud_and_history(client, http):
    family = unique("Crud")
    patient = client.resource("Patient", name=[{"family": family, "given": ["Ada"]}], gender="female")
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == family
    assert read["meta"]["versionId"] == "1"
    assert client.resources("Patient").search(_id=patient.id).get().id == patient.id

    patient["birthDate"] = "1815-12-10"
    patient.save()
    assert patient["meta"]["versionId"] == "2"
    assert client.reference("Patient", patient.id).to_resource()["birthDate"] == "1815-12-10"

    v1 = client.execute(f"Patient/{patient.id}/_history/1", method="get")
    assert v1["meta"]["versionId"] == "1" and "birthDate" not in v1

    history = client.execute(f"Patient/{patient.id}/_history", method="get")
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]  # newest first

    patient.delete()
    with pytest.raises((ResourceNotFound, OperationOutcome)):
        client.reference("Patient", patient.id).to_resource()
    gone = http.get(f"{base_url()}/Patient/{patient.id}")
    assert gone.status_code == 410

    # History keeps the deletion as an entry with a request but no resource.
    history = client.execute(f"Patient/{patient.id}/_history", method="get")
    assert len(history["entry"]) == 3
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]
    assert all("request" in e for e in history["entry"])


def test_paging_follows_next_links(client, http):
    family = unique("Paging")
    created = {client.resource("Patient", name=[{"family": family}]).save().id for _ in range(25)}
    assert len(created) == 25

    search = client.resources("Patient").search(family=family).limit(10)
    seen = [p.id for p in search]  # fhirpy's iterator follows `next` links
    assert len(seen) == 25 and set(seen) == created

    # Walk the pages by hand to check the links on each.
    url = f"{base_url()}/Patient?family={family}&_count=10"
    pages = []
    while url:
        bundle = http.get(url).json()
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        for relation, link in links.items():
            assert link.startswith(base_url() + "/"), (relation, link)
        assert {"self", "first", "last"} <= links.keys()
        assert bundle["total"] == 25
        pages.append(len(bundle.get("entry", [])))
        assert ("previous" in links) == (len(pages) > 1)
        url = links.get("next")
    assert pages == [10, 10, 5]


def test_count_like_fhirpy(client, http):
    family = unique("Count")
    for _ in range(3):
        client.resource("Patient", name=[{"family": family}]).save()
    assert client.resources("Patient").search(family=family).count() == 3

    response = http.get(f"{base_url()}/Patient", params={"family": family, "_count": 0, "_totalMethod": "count"})
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["total"] == 3
    assert not bundle.get("entry")


def test_fhirpy_sends_plain_json_content_type():
    """fhirpy posts with requests' json=, i.e. Content-Type: application/json: that must be accepted too."""
    response = requests.post(
        f"{base_url()}/Patient",
        json={"resourceType": "Patient", "active": True},
        headers={"Accept": "application/fhir+json"},
        hooks={"response": [check_response]},
        timeout=30,
    )
    assert response.status_code == 201
