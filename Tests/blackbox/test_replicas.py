"""Two real servers on one PostgreSQL database (issue 18): the suite's server and a second one
started here, both `caduceus serve` processes with pools of their own. Whatever one is asked,
the other answers alike. SQLite is one embedded server (not a replica store): Scripts/blackbox.sh
runs this file in its PostgreSQL pass only."""

import os
import threading
import time
import uuid

import pytest
import requests

from fhirtest import free_port, start_server

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    database = os.environ.get("CADUCEUS_DATABASE", "")
    if "CADUCEUS_BIN" not in os.environ or not database.startswith("postgres"):
        reason = "replicas share a PostgreSQL database (Scripts/blackbox.sh runs this file in its PostgreSQL pass only)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    log = open(tmp_path_factory.mktemp("replica") / "second.log", "wb")
    # The same tenants as the suite's server: a replica is configured alike.
    process, second = start_server(database, free_port(), log, "--tenant", "blackbox_tenant", "--tenant", "another_tenant")
    yield os.environ["CADUCEUS_BASE_URL"], second
    process.terminate()
    process.wait(timeout=30)


def on_both(first, second, count, send):
    """Runs send(base, index) for index in range(count), even ones on `first`, all at once; the statuses."""
    statuses = [None] * count

    def run(index):
        statuses[index] = send(first if index % 2 == 0 else second, index).status_code

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_an_export_started_on_one_is_polled_downloaded_and_deleted_on_the_other(replicas):
    first, second = replicas
    run = uuid.uuid4().hex[:12]
    for index in range(6):
        body = {"resourceType": "Patient", "id": f"rep-{run}-{index}"}
        assert requests.put(f"{first}/Patient/rep-{run}-{index}", json=body, headers=FHIR_JSON).status_code == 201
    kick_off = requests.get(f"{first}/$export?_type=Patient", headers={"Prefer": "respond-async"})
    assert kick_off.status_code == 202
    status = kick_off.headers["Content-Location"]
    status_on_second = second + status[status.index("/$export-poll-status"):]
    for _ in range(300):
        poll = requests.get(status_on_second)
        if poll.status_code == 200:
            break
        assert poll.status_code == 202
        time.sleep(0.1)
    assert poll.status_code == 200
    [output] = poll.json()["output"]
    file_url = second + output["url"][output["url"].index("/$export-file"):]
    lines = requests.get(file_url).text.splitlines()
    assert len(lines) == output["count"]
    assert all(f'"id":"rep-{run}-{index}"' in "".join(lines) for index in range(6))
    assert requests.delete(status_on_second).status_code == 202
    assert requests.get(status).status_code == 404


def test_the_same_conditional_create_on_both_at_once_creates_one(replicas):
    first, second = replicas
    value = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:replica", "value": value}]}
    statuses = on_both(first, second, 10, lambda base, _: requests.post(
        f"{base}/Patient", json=body, headers={**FHIR_JSON, "If-None-Exist": f"identifier=urn:replica|{value}"}))
    assert sorted(statuses) == [200] * 9 + [201]
    assert requests.get(f"{second}/Patient?identifier=urn:replica|{value}").json()["total"] == 1


def test_if_match_updates_racing_on_both_let_one_win(replicas):
    first, second = replicas
    rid = f"rep-{uuid.uuid4().hex[:12]}"
    assert requests.put(f"{first}/Patient/{rid}", json={"resourceType": "Patient", "id": rid}, headers=FHIR_JSON).status_code == 201
    statuses = on_both(first, second, 8, lambda base, index: requests.put(
        f"{base}/Patient/{rid}", json={"resourceType": "Patient", "id": rid, "gender": "male" if index % 2 else "female"},
        headers={**FHIR_JSON, "If-Match": 'W/"1"'}))
    assert sorted(statuses) == [200] + [412] * 7
    assert requests.get(f"{first}/Patient/{rid}").json()["meta"]["versionId"] == "2"
