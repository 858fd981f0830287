"""A crash loses no acknowledged write: kill -9 the server mid-stream, restart it on the same
database, and find every write it had acknowledged, each at the version it acknowledged."""

import signal
import threading
import time

import requests

from fhirtest import free_port, start_server


def test_kill_9_loses_no_acknowledged_write(database, tmp_path):
    log = open(tmp_path / "server.log", "wb")
    process, base = start_server(database, free_port(), log)
    acknowledged = {}  # id -> version the server confirmed
    lock = threading.Lock()
    stop = threading.Event()
    run = tmp_path.name.replace("_", "-")[-20:]

    def writer(worker):
        session = requests.Session()
        for n in range(10_000):
            if stop.is_set():
                return
            rid = f"crash-{run}-{worker}-{n % 5}"
            body = {"resourceType": "Patient", "id": rid, "name": [{"family": f"Crash{n}"}]}
            try:
                response = session.put(f"{base}/Patient/{rid}", json=body,
                                       headers={"Content-Type": "application/fhir+json"}, timeout=5)
            except requests.RequestException:
                return  # the server died under us: this write was never acknowledged
            if response.status_code in (200, 201):
                version = int(response.headers["ETag"].split('"')[1])
                with lock:
                    acknowledged[rid] = max(version, acknowledged.get(rid, 0))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 4, "too few writes before the crash to prove anything"

    process, base = start_server(database, free_port(), log)
    try:
        for rid, version in acknowledged.items():
            response = requests.get(f"{base}/Patient/{rid}", timeout=5)
            assert response.status_code == 200, f"{rid} lost after the crash"
            assert int(response.json()["meta"]["versionId"]) >= version, f"{rid} went back to an older version"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
