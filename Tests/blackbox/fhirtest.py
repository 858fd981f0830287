"""Helpers shared by the black-box tests: FHIR validation of every response body."""

import json
import os
import re
import socket
import subprocess
import time
import uuid
from email.utils import parsedate_to_datetime

import requests
from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirelementfactory import FHIRElementFactory

FHIR_JSON = "application/fhir+json"
# Content types a FHIR JSON body may come back with.
JSON_TYPES = ("application/fhir+json", "application/json")
WEAK_ETAG = re.compile(r'^W/"(\d+)"$')
# FHIR id: [A-Za-z0-9\-\.]{1,64}
ID = r"[A-Za-z0-9\-.]{1,64}"


def base_url():
    return os.environ["CADUCEUS_BASE_URL"].rstrip("/")


def validate(body):
    """Validate one resource (a Bundle validates its entries too) with the
    fhir.resources R4B models and fhirclient's strict R4 models; return it."""
    assert isinstance(body, dict) and "resourceType" in body, f"not a FHIR resource: {body!r}"
    rtype = body["resourceType"]
    get_fhir_model_class(rtype).model_validate(body)
    # FHIRElementFactory falls back to a generic class for unknown types: insist on the real one.
    model = FHIRElementFactory.instantiate(rtype, None)
    assert getattr(model, "resource_type", None) == rtype, f"fhirclient has no model for {rtype}"
    type(model)(body, strict=True)
    return body


def check_response(response, *args, **kwargs):
    """requests response hook: every non-empty body must be FHIR JSON that validates."""
    if not response.content:
        return
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in JSON_TYPES, (
        f"{response.request.method} {response.url} -> {response.status_code} "
        f"with Content-Type {ctype!r}: {response.text[:300]}"
    )
    validate(response.json())


def validating_session():
    s = requests.Session()
    s.headers["Accept"] = FHIR_JSON
    s.hooks["response"].append(check_response)
    return s


def unique(prefix):
    """A family name no other test run uses (letters only, so string search matches it exactly)."""
    return prefix + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:12])


def version_of(etag):
    m = WEAK_ETAG.match(etag or "")
    assert m, f"ETag {etag!r} is not W/\"n\""
    return int(m.group(1))


def assert_http_date(value):
    assert value, "missing Last-Modified"
    assert parsedate_to_datetime(value) is not None


def assert_operation_outcome(response, status):
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:300]}"
    body = response.json()  # the hook has validated it
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    return body


def run_curl(command):
    """Run a shell curl command line and split its -i output into (status, headers, body)."""
    out = subprocess.run(["bash", "-c", command], capture_output=True, check=True, timeout=60).stdout
    # -i prints every response, including interim ones such as "100 Continue".
    while True:
        head, sep, body = out.partition(b"\r\n\r\n")
        assert sep, f"no header block in curl output: {out[:300]!r}"
        lines = head.decode("iso-8859-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status >= 200:
            break
        out = body
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def parse_json_body(headers, body):
    ctype = headers.get("content-type", "").split(";")[0].strip()
    assert ctype in JSON_TYPES, f"Content-Type {ctype!r}"
    return validate(json.loads(body))


BASE_PATH = "/fhir-server/api/v4"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database, port, log, *options):
    """Start another server (CADUCEUS_BIN) on `database` and `port` with extra `options`; (process, base URL)."""
    process = subprocess.Popen(
        [os.environ["CADUCEUS_BIN"], "serve", "--host", "127.0.0.1", "--port", str(port), "--database", database, *options],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}{BASE_PATH}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(base + "/metadata", timeout=2).status_code == 200:
                return process, base
        except requests.ConnectionError:
            pass
        assert process.poll() is None, "server exited during start-up"
        time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start")
