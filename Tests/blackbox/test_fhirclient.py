"""SMART on FHIR's fhirclient with its strict R4 models."""

import re
import uuid

import pytest
import requests
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException, FHIRServer

from fhirtest import ID, base_url, check_response, unique, version_of


@pytest.fixture
def server():
    srv = FHIRServer(None, base_uri=base_url())
    srv.session.hooks["response"].append(check_response)
    return srv


def create(server, patient):
    """fhirclient's create() drops the headers, so POST through its server to read Location."""
    response = server.post_json("Patient", patient.as_json())
    assert response.status_code == 201
    m = re.fullmatch(re.escape(base_url()) + rf"/Patient/({ID})/_history/1", response.headers["Location"])
    assert m, response.headers["Location"]
    return m.group(1)


def test_capability_statement(server):
    server.get_capability()
    cs = server.capabilityStatement
    assert isinstance(cs, CapabilityStatement)
    assert cs.fhirVersion == "4.0.1"
    assert cs.kind == "instance"
    assert "json" in cs.format or "application/fhir+json" in cs.format
    types = {r.type for r in cs.rest[0].resource}
    assert {"Patient", "AllergyIntolerance", "Observation"} <= types


def test_create_read_update_delete(server):
    family = unique("Smart")
    new_id = create(server, Patient({"resourceType": "Patient", "name": [{"family": family}], "active": True}, strict=True))

    patient = Patient.read(new_id, server)
    assert patient.id == new_id
    assert patient.name[0].family == family
    assert patient.meta.versionId == "1"
    assert patient.meta.lastUpdated is not None

    patient.active = False
    patient.update(server)
    patient = Patient.read(new_id, server)
    assert patient.active is False and patient.meta.versionId == "2"

    patient.delete(server)
    with pytest.raises(requests.HTTPError) as excinfo:
        Patient.read(new_id, server)
    assert excinfo.value.response.status_code == 410

    with pytest.raises(FHIRNotFoundException):
        Patient.read("no-such-" + uuid.uuid4().hex[:8], server)


def test_search(server, http):
    family = unique("Search")
    ids = {create(server, Patient({"resourceType": "Patient", "name": [{"family": family}]}, strict=True)) for _ in range(3)}

    found = list(Patient.where({"family": family, "_count": "2"}).perform_resources_iter(server))
    assert {p.id for p in found} == ids and len(found) == 3
    assert all(isinstance(p, Patient) for p in found)

    # The same search as POST /Patient/_search with a form body.
    response = http.post(f"{base_url()}/Patient/_search", data={"family": family})
    assert response.status_code == 200
    bundle = Bundle(response.json(), strict=True)
    assert bundle.type == "searchset" and bundle.total == 3
    assert {e.resource.id for e in bundle.entry} == ids


def test_update_as_create(server):
    new_id = "cad-" + uuid.uuid4().hex[:16]
    patient = Patient({"resourceType": "Patient", "id": new_id, "active": True}, strict=True)
    response = server.put_json(f"Patient/{new_id}", patient.as_json())
    assert response.status_code in (200, 201)
    assert version_of(response.headers["ETag"]) == 1
    assert Patient.read(new_id, server).active is True
