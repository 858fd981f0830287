"""What README's "Kubernetes" section says of deploy/kubernetes, checked in the manifests
themselves: offline (no cluster runs here), with kubernetes-validate's schemas of Kubernetes 1.30
(the first with securityContext.appArmorProfile) and of its latest version, strictly (an unknown
field fails). The sensor's capability set is run on the real kernel by
Tests/sensor_cli/test_daemonset_capabilities.py."""
import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy/kubernetes"
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def documents():
    """(file name, resource) for every resource of every manifest, in apply order."""
    found = []
    for path in sorted(FOLDER.glob("*.yaml")):
        found += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return found


def resource(kind, name):
    return next(d for _, d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def pod_specs():
    """(workload name, pod spec) of every workload."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"])
            for _, d in documents() if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def readme_section():
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Kubernetes")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_validates_strictly(version):
    assert len(documents()) >= 10
    for name, document in documents():
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validation_refuses_what_a_cluster_would():
    """Not a check that passes anything: a misspelt field, a wrong type, and a field newer than
    the version are each refused."""
    daemonset = resource("DaemonSet", "caduceus-sensor")
    broken = copy.deepcopy(daemonset)
    broken["spec"]["template"]["spec"]["hostPid"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    broken = copy.deepcopy(daemonset)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = "BPF"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, "1.29.0", strict=True)


def test_nothing_runs_privileged_and_every_container_drops_every_capability():
    assert "privileged: true" not in "".join(p.read_text() for p in FOLDER.glob("*.yaml"))
    for workload, spec in pod_specs():
        assert not spec.get("hostNetwork") and not spec.get("hostIPC"), workload
        assert spec.get("automountServiceAccountToken") is False, workload
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security.get("privileged", False) is False, workload
            assert security["allowPrivilegeEscalation"] is False, workload
            assert security["readOnlyRootFilesystem"] is True, workload
            assert security["capabilities"]["drop"] == ["ALL"], workload
            assert "resources" in container and "memory" in container["resources"]["limits"], workload


def test_the_server_and_database_are_held_to_the_restricted_standard():
    namespace = resource("Namespace", "caduceus")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload, spec in pod_specs():
        if workload == "caduceus-sensor":
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert not spec.get("hostPID"), workload
        for container in spec["containers"]:
            assert "add" not in container["securityContext"]["capabilities"], workload


def test_the_fhir_servers_probe_healthz_and_feed_the_audit_trail():
    deployment = resource("Deployment", "caduceus-fhir")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert {"name": "http", "containerPort": 9080} in container["ports"]
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 5
    assert "--port=9080" in container["args"] and "--audit=on" in container["args"]
    assert "--audit-feed-token-file=/run/caduceus/audit-feed.token" in container["args"]
    assert deployment["spec"]["replicas"] >= 2
    service = resource("Service", "caduceus-fhir")
    assert service["spec"]["ports"][0]["port"] == 9080
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_sensor_watches_the_node_with_three_capabilities_and_names_its_node():
    daemonset = resource("DaemonSet", "caduceus-sensor")
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["hostPID"] is True
    container = spec["containers"][0]
    security = container["securityContext"]
    assert security["privileged"] is False
    assert sorted(security["capabilities"]["add"]) == ["BPF", "PERFMON", "SYS_PTRACE"]
    assert all(mount.get("readOnly") for mount in container["volumeMounts"])
    args = container["args"]
    assert args[0] == "detect" and "--audit-site=$(NODE_NAME)" in args
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
    # The feed goes to the FHIR Service, on its port and the server's base path.
    url = next(a for a in args if a.startswith("--audit-url=")).split("=", 1)[1]
    assert url == "http://caduceus-fhir.caduceus.svc:9080/fhir-server/api/v4"
    assert daemonset["metadata"]["namespace"] == "caduceus-sensor"
    assert resource("Namespace", "caduceus-sensor")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_readme_says_what_the_manifests_hold():
    section = readme_section()
    for capability in ("CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"):
        assert capability in section, capability
    assert "CloudNativePG" in section
    assert "not a cluster run" in section
    assert "/healthz" in section
    # Every Secret a manifest needs is made by a command the section gives, with its keys.
    needed = set()
    for _, spec in pod_specs():
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                needed |= {(volume["secret"]["secretName"], item["key"]) for item in volume["secret"]["items"]}
        for container in spec["containers"]:
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    needed.add((reference["name"], reference["key"]))
    assert needed
    for name, key in needed:
        assert re.search(rf"create secret generic {name}\b[^\n]*(\\\n[^\n]*)*--from-literal={key}=", section), (name, key)
