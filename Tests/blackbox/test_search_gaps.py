"""The search gaps of issue 17 as a client sees them: compartment search, $everything paging
and care dates, includes over the bound, long OR lists, POST _search paging by a stored key."""

import uuid

from fhirtest import FHIR_JSON, assert_operation_outcome, base_url

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def put_all(http, resources):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    response = http.post(base_url(), json=bundle, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 200, response.text[:300]


def observation(oid, patient, date=None, code="8867-4"):
    body = {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}}
    if date:
        body["effectiveDateTime"] = date
    return body


def keys(bundle, mode=None):
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if "resource" in e and (mode is None or e["search"]["mode"] == mode)]


def link(bundle, relation):
    return next((l["url"] for l in bundle.get("link", []) if l["relation"] == relation), None)


def walk(http, url, limit=50):
    pages = []
    while url and len(pages) < limit:
        response = http.get(url)
        assert response.status_code == 200, response.text[:300]
        pages.append(response.json())
        url = link(pages[-1], "next")
    return pages


def test_compartment_search(http):
    p, q = uid("p"), uid("q")
    put_all(http, [{"resourceType": "Patient", "id": p}, {"resourceType": "Patient", "id": q},
                   observation(f"{p}-1", p), observation(f"{p}-2", p, code="2339-0"), observation(f"{q}-1", q)])
    found = http.get(f"{base_url()}/Patient/{p}/Observation").json()
    assert sorted(keys(found)) == [f"Observation/{p}-1", f"Observation/{p}-2"]
    assert keys(http.get(f"{base_url()}/Patient/{p}/Observation", params={"code": "2339-0"}).json()) == [f"Observation/{p}-2"]
    # With audit on (the deployment's server), the server's own AuditEvents about p are in p's
    # compartment too, written a moment after the requests: only what this test wrote is compared.
    everything = [key for key in keys(http.get(f"{base_url()}/Patient/{p}/*").json()) if not key.startswith("AuditEvent/")]
    assert sorted(everything) == sorted([f"Patient/{p}", f"Observation/{p}-1", f"Observation/{p}-2"])
    posted = http.post(f"{base_url()}/Patient/{q}/Observation/_search", data="code=8867-4", headers=FORM).json()
    assert keys(posted) == [f"Observation/{q}-1"]
    assert_operation_outcome(http.get(f"{base_url()}/Patient/{p}/Organization"), 400)
    assert_operation_outcome(http.get(f"{base_url()}/Organization/x/Patient"), 404)


def test_everything_pages_and_care_dates(http):
    p = uid("ev")
    put_all(http, [{"resourceType": "Patient", "id": p}]
            + [observation(f"{p}-{m}", p, f"2019-{m:02d}-15") for m in range(1, 13)])
    # _type: a deployed server with its audit trail on adds AuditEvents about the patient to its
    # compartment as this test reads it.
    types = "Patient,Observation"
    first = http.get(f"{base_url()}/Patient/{p}/$everything", params={"_count": 5, "_type": types}).json()
    assert first["total"] == 13 and len(first["entry"]) == 5
    pages = walk(http, f"{base_url()}/Patient/{p}/$everything?_count=5&_type={types}")
    assert len(pages) == 3
    collected = [k for page in pages for k in keys(page)]
    assert len(collected) == 13 and len(set(collected)) == 13 and collected[0] == f"Patient/{p}"
    spring = http.get(f"{base_url()}/Patient/{p}/$everything",
                      params={"start": "2019-03-01", "end": "2019-05-31", "_type": types}).json()
    assert sorted(keys(spring)) == sorted([f"Patient/{p}"] + [f"Observation/{p}-{m}" for m in (3, 4, 5)])
    assert_operation_outcome(http.get(f"{base_url()}/Patient/{p}/$everything", params={"start": "soon"}), 400)
    # Type level: every patient, paged by entries with a cursor in the next link.
    top = http.get(f"{base_url()}/Patient/$everything", params={"_count": 3}).json()
    assert len(top["entry"]) == 3 and "_cursor=" in link(top, "next")
    assert len(http.get(link(top, "next")).json()["entry"]) == 3


def test_revinclude_over_the_bound_is_warned_and_shared(http):
    p = uid("ri")
    put_all(http, [{"resourceType": "Patient", "id": p}]
            + [observation(f"{p}-{n}", p, "2020-01-01") for n in range(1001)]
            + [{"resourceType": "Condition", "id": f"{p}-c", "subject": {"reference": f"Patient/{p}"}}])
    bundle = http.get(f"{base_url()}/Patient", params=[("_id", p), ("_revinclude", "Observation:subject"),
                                                       ("_revinclude", "Condition:subject")]).json()
    included = keys(bundle, "include")
    assert f"Condition/{p}-c" in included
    assert sum(k.startswith("Observation/") for k in included) == 500
    outcome = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["issue"][0]["severity"] == "warning"
    assert "_revinclude=Observation:subject" in outcome[0]["issue"][0]["diagnostics"]


def test_or_list_at_the_limit(http):
    family = uid("or").replace("-", "")
    put_all(http, [{"resourceType": "Patient", "id": uid("orp"), "name": [{"family": family}]}])
    values = [family] + [f"none{n}" for n in range(999)]
    response = http.post(f"{base_url()}/Patient/_search", data={"family": ",".join(values)}, headers=FORM)
    assert response.status_code == 200, response.text[:300]
    assert len(keys(response.json())) == 1
    too_many = http.post(f"{base_url()}/Patient/_search", data={"family": ",".join(values + ["x"])}, headers=FORM)
    assert assert_operation_outcome(too_many, 400)["issue"][0]["code"] == "too-costly"


def test_long_post_search_pages_by_a_stored_key(http):
    family = uid("ps").replace("-", "")
    put_all(http, [{"resourceType": "Patient", "id": f"{family}-{n}", "name": [{"family": family}]} for n in range(5)])
    filler = [f"x{n}-" + "q" * 95 for n in range(900)]
    form = {"family": ",".join([family] + filler), "_count": "2", "_sort": "_id"}
    first = http.post(f"{base_url()}/Patient/_search", data=form, headers=FORM)
    assert first.status_code == 200, first.text[:300]
    next_url = link(first.json(), "next")
    assert "_getpages=" in next_url and len(next_url) < 300
    pages = [first.json()] + walk(http, next_url)
    assert [k for page in pages for k in keys(page)] == [f"Patient/{family}-{n}" for n in range(5)]
    assert_operation_outcome(http.get(f"{base_url()}/Patient", params={"_getpages": "nonsense"}), 410)
