"""The compose cluster as a user runs it: `caduceus up --postgres --replicas 3` (three FHIR servers
behind HAProxy, PostgreSQL with a synchronous streaming standby), requests through HAProxy on
127.0.0.1, races and an export across the three replicas, one replica killed under write load,
the primary stopped under write load and the standby promoted, then `caduceus down --volumes` leaving none of it.

Needs root and Docker (fails under CI=true without them), and the host's psql (Scripts/setup.sh
installs PostgreSQL 15); CADUCEUS_BIN names the binary."""
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid

from test_stack import BIN, names, require_root_and_docker, run, server_port

CLUSTER = {"caduceus-fhir", "caduceus-fhir-2", "caduceus-fhir-3", "caduceus-haproxy", "caduceus-postgres", "caduceus-postgres-standby"}


def call(method, url, body=None, headers=None, with_headers=False, timeout=20):
    """(status, parsed body or None[, headers]); a refused or reset connection is status 0."""
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            result = response.status, json.loads(text) if text.startswith(b"{") else text.decode(), response.headers
    except urllib.error.HTTPError as error:
        text = error.read()
        result = error.code, json.loads(text) if text.startswith(b"{") else None, error.headers
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        result = 0, f"{type(error).__name__}: {error}", {}
    return result if with_headers else result[:2]


def on_every_replica(bases, count, send):
    """send(base, index) for index in range(count), spread over `bases`, all at once; the statuses."""
    statuses = [None] * count

    def one(index):
        statuses[index] = send(bases[index % len(bases)], index)[0]

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def races_and_export_across_replicas(bases):
    """What issue 18 asks of replicas, on the compose cluster's three: the same conditional create
    sent to every replica at once creates one resource; If-Match updates racing on different
    replicas let one win; an export started on one is polled on another and downloaded on a third."""
    value = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:cluster", "value": value}]}
    statuses = on_every_replica(bases, 9, lambda base, _: call(
        "POST", f"{base}/Patient", body, {"If-None-Exist": f"identifier=urn:cluster|{value}"}))
    assert sorted(statuses) == [200] * 8 + [201], statuses
    for base in bases:
        assert call("GET", f"{base}/Patient?identifier=urn:cluster|{value}")[1]["total"] == 1

    rid = f"race-{value[:12]}"
    assert call("PUT", f"{bases[0]}/Patient/{rid}", {"resourceType": "Patient", "id": rid})[0] == 201
    statuses = on_every_replica(bases, 9, lambda base, index: call(
        "PUT", f"{base}/Patient/{rid}", {"resourceType": "Patient", "id": rid, "gender": ["male", "female", "other"][index % 3]},
        {"If-Match": 'W/"1"'}))
    assert sorted(statuses) == [200] + [412] * 8, statuses
    for base in bases:
        assert call("GET", f"{base}/Patient/{rid}")[1]["meta"]["versionId"] == "2"

    status, _, headers = call("GET", f"{bases[0]}/$export?_type=Patient", headers={"Prefer": "respond-async"},
                              with_headers=True)
    assert status == 202, status
    location = headers["Content-Location"]
    poll_url = bases[1] + location[location.index("/$export-poll-status"):]
    for _ in range(300):
        status, manifest = call("GET", poll_url)
        if status == 200:
            break
        assert status == 202, status
        time.sleep(0.1)
    assert status == 200
    [output] = manifest["output"]
    file_url = bases[2] + output["url"][output["url"].index("/$export-file"):]
    request = urllib.request.Request(file_url, headers={"Accept": "application/fhir+ndjson"})
    with urllib.request.urlopen(request, timeout=20) as response:
        lines = response.read().decode().splitlines()
    assert len(lines) == output["count"] and any(f'"id":"{rid}"' in line for line in lines)


def sql(port, query):
    """One value from the host's psql against the cluster's PostgreSQL on `port`."""
    result = run("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "caduceus", "-d", "fhir", "-Atc", query, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_three_replicas_behind_haproxy_on_a_synchronous_standby(tmp_path):
    require_root_and_docker()
    assert not (names("containers") & CLUSTER), "a Caduceus deployment is already running: caduceus down first"
    os.environ["PGPASSWORD"] = "caduceus"
    port = random.randint(20000, 29990)
    postgres = server_port()
    stack = ["--results", str(tmp_path / "results"), "--fhir-port", str(port), "--postgres-port", str(postgres)]
    base = f"http://127.0.0.1:{port}/fhir-server/api/v4"

    # Refused before anything starts.
    refused = run(BIN, "up", "--replicas", "3", *stack)
    assert refused.returncode != 0 and "needs --postgres" in refused.stderr, refused.stderr
    refused = run(BIN, "up", "--postgres", "--replicas", "10", *stack)
    assert refused.returncode != 0 and "1 to 9" in refused.stderr, refused.stderr
    volumes_before = names("volumes")
    try:
        up = run(BIN, "up", "--postgres", "--replicas", "3", *stack)
        assert up.returncode == 0, up.stdout + up.stderr
        assert CLUSTER <= names("containers")
        assert f"replicas:    3 behind HAProxy, on 127.0.0.1:{port + 1}-{port + 3}" in up.stdout, up.stdout

        # Written through HAProxy, read from every replica; each answers its probe.
        status, _ = call("PUT", base + "/Patient/cluster-1", {"resourceType": "Patient", "id": "cluster-1"})
        assert status == 201
        for index in (1, 2, 3):
            replica = f"http://127.0.0.1:{port + index}"
            status, patient = call("GET", replica + "/fhir-server/api/v4/Patient/cluster-1")
            assert status == 200 and patient["meta"]["versionId"] == "1", (index, status)
            assert call("GET", replica + "/healthz") == (200, "ok\n")
        races_and_export_across_replicas(
            [f"http://127.0.0.1:{port + index}/fhir-server/api/v4" for index in (1, 2, 3)])
        # The standby streams synchronously and is read-only.
        assert sql(postgres, "select application_name || ' ' || state || ' ' || sync_state from pg_stat_replication") \
            == "caduceus_standby streaming sync"
        assert sql(postgres + 1, "select pg_is_in_recovery()") == "t"

        # Three writers through HAProxy; replica 2 killed after the first writes.
        acknowledged, failed, lock = [], [], threading.Lock()

        def writer(name):
            for number in range(40):
                key = f"w{name}-{number}"
                status, _ = call("PUT", f"{base}/Patient/{key}", {"resourceType": "Patient", "id": key})
                with lock:
                    (acknowledged if status == 201 else failed).append((key, status, time.time()))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 15 and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        killed_at = time.time()
        assert run("docker", "kill", "caduceus-fhir-2").returncode == 0
        for thread in threads:
            thread.join(timeout=120)
        print(f"cluster: {len(acknowledged)} writes acknowledged, {len(failed)} failed: {[(k, s) for k, s, _ in failed]}")
        # Only the requests under way on the killed replica may fail; the others go elsewhere.
        assert len(failed) <= 3, failed
        assert not [f for f in failed if f[2] > killed_at + 3], failed
        assert len(acknowledged) + len(failed) == 120
        # Every acknowledged write is on the primary and, synchronous, on the standby.
        keys = ",".join(f"'{key}'" for key, _, _ in acknowledged)
        query = f"select count(*) from resources where type = 'Patient' and id in ({keys})"
        assert sql(postgres, query) == str(len(acknowledged))
        deadline = time.time() + 10
        while sql(postgres + 1, query) != str(len(acknowledged)) and time.time() < deadline:
            time.sleep(0.2)
        assert sql(postgres + 1, query) == str(len(acknowledged))
        # And read back through HAProxy, now on the two replicas left.
        for key, _, _ in acknowledged[::10]:
            assert call("GET", f"{base}/Patient/{key}")[0] == 200, key

        # The primary stopped under writes, the standby promoted as README says: the servers
        # answer 503 meanwhile, find the new primary themselves, and no acknowledged write is lost.
        after_kill, refused, stop = [], [], threading.Event()

        def steady_writer(name):
            number = 0
            while not stop.is_set():
                key = f"f{name}-{number}"
                number += 1
                sent = time.time()
                # 8 s: every request is answered within the connection wait (5 s) and a probe.
                status, body = call("PUT", f"{base}/Patient/{key}", {"resourceType": "Patient", "id": key}, timeout=8)
                with lock:
                    (after_kill if status == 201 else refused).append((key, status, body, time.time(), time.time() - sent))
                if status != 201:
                    time.sleep(0.2)

        threads = [threading.Thread(target=steady_writer, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        while len(after_kill) < 10 and time.time() < killed_at + 120:
            time.sleep(0.05)
        stopped_at = time.time()
        assert run("docker", "stop", "caduceus-postgres", timeout=60).returncode == 0
        time.sleep(3)
        promoted_at = time.time()
        assert sql(postgres + 1, "select pg_promote()") == "t"
        deadline = time.time() + 30
        while len([a for a in after_kill if a[3] > promoted_at]) < 20 and time.time() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        resumed = [a[3] for a in after_kill if a[3] > promoted_at]
        print(f"failover: {len(after_kill)} writes acknowledged, {len(refused)} refused"
              f" ({sorted({r[1] for r in refused})}), first write {min(resumed) - promoted_at:.1f} s after pg_promote()"
              f" ({promoted_at - stopped_at:.1f} s after the stop)" if resumed else "failover: no write after promotion")
        for key, status, body, _, took in refused:
            print(f"refused {key}: {status} after {took:.1f} s: {body if status != 503 else body['issue'][0]['diagnostics']}")
        if len(resumed) < 20 or any(r[1] != 503 for r in refused):
            if any(r[1] == 0 for r in refused):
                time.sleep(12)  # until the servers answer what the client gave up on, and log it
            for name in ("caduceus-fhir", "caduceus-fhir-2", "caduceus-fhir-3"):
                lines = run("docker", "logs", name).stderr.splitlines()
                print(name, "\n".join(line for line in lines if "Connection creation failed" not in line)[-6000:])
            # HAProxy's line of each request without an answer: which replica, and its timings.
            logged = run("docker", "logs", "caduceus-haproxy")
            for key in [r[0] for r in refused if r[1] != 503]:
                print("\n".join(line for line in (logged.stdout + logged.stderr).splitlines() if f"/{key} " in line))
        assert len(resumed) >= 20, "the servers did not move to the promoted standby"
        assert min(resumed) - promoted_at < 10
        # Refused while there was no primary: the servers' own 503 OperationOutcome, never a 500,
        # and every request answered (a statement under way on the stopped primary once neither
        # failed nor returned: the lease check closes it, PostgresDatabase.failStalledLeases).
        # A write met the outage: refused, or held through it and carried out on the new primary.
        assert refused or [a for a in after_kill if a[3] > stopped_at and a[4] > 2], "no write met the outage"
        for key, status, body, _, _ in refused:
            assert status == 503 and body and body["resourceType"] == "OperationOutcome", (key, status, body)
            assert body["issue"][0]["code"] == "transient", body
        # Every write acknowledged, before the stop (synchronous) and after, is on the new primary.
        keys = ",".join(f"'{key}'" for key in [a[0] for a in acknowledged] + [a[0] for a in after_kill])
        assert sql(postgres + 1, f"select count(*) from resources where type = 'Patient' and id in ({keys})") \
            == str(len(acknowledged) + len(after_kill))
        assert sql(postgres + 1, "select pg_is_in_recovery()") == "f"
        # Every acknowledged write has its AuditEvent, once: those on the replica killed (answered
        # only once their event was committed) and those through the failover (an event the
        # database could not take is kept and written again once the new primary answers; one
        # whose commit may have landed is written under the same id, so never twice).
        missing = []
        deadline = time.time() + 15
        for key in [a[0] for a in acknowledged] + [a[0] for a in after_kill]:
            while True:
                status, body = call("GET", f"{base}/AuditEvent?entity=Patient/{key}&subtype=update&_summary=count")
                if status == 200 and body["total"] == 1:
                    break
                if time.time() > deadline:
                    missing.append((key, status))
                    break
                time.sleep(0.5)
        assert not missing, missing
    finally:
        # From another results folder, as a user who forgot --results would: the cluster file is
        # not found, and still nothing of the cluster is left.
        down = run(BIN, "down", "--volumes", "--results", str(tmp_path / "elsewhere"), "--fhir-port", str(port))
        assert down.returncode == 0, down.stdout + down.stderr
    assert not (names("containers") & CLUSTER)
    assert not {v for v in names("volumes") - volumes_before if v.startswith("caduceus_")}
    leftover = run(BIN, "down", "--volumes", *stack)
    assert leftover.returncode == 0, leftover.stderr
    assert not (tmp_path / "results" / "cluster.yml").exists()
