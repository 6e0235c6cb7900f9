"""deploy/: Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate, offline),
systemd units with systemd-analyze verify, the HAProxy config with haproxy -c."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from aipolicy.cli import main
from click.testing import CliRunner

import aipolicy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.31.0"
AIPOLICY = str(Path(sys.executable).with_name("aipolicy"))
FEED_OPTIONS = ("--policy-url", "--policy-pubkey")  # `aipolicy proxy --policy-url`, the signed policy feed


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue  # a kustomize file, not an API object
        found.extend((f"{path.name}#{n}", doc) for n, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc)
    return found


MANIFESTS = manifests()


@pytest.mark.parametrize(("name", "document"), MANIFESTS, ids=[name for name, _ in MANIFESTS])
def test_kubernetes_manifest_matches_the_api_schema(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_mistakes() -> None:
    deployment = copy.deepcopy(next(doc for _, doc in MANIFESTS if doc["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(next(doc for _, doc in MANIFESTS if doc["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []  # a typo of volumeMounts
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_placeholder() -> None:
    listed = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in (DEPLOY / "kubernetes").glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
    assert set(listed) == files


def test_the_configmap_policy_loads(tmp_path: Path) -> None:
    configmap = next(doc for _, doc in MANIFESTS if doc["kind"] == "ConfigMap")
    (tmp_path / "policy.yaml").write_text(configmap["data"]["policy.yaml"])
    policy = aipolicy.load_policy(tmp_path / "policy.yaml")
    decision = aipolicy.decide(policy, aipolicy.RequestFacts(hosts=("chat.deepseek.com",)))
    assert decision.blocked


def proxy_options() -> set[str]:
    help_text = CliRunner().invoke(main, ["proxy", "--help"]).output
    return set(re.findall(r"(--[a-z][a-z-]+)", help_text))


def test_the_deployment_and_container_use_real_proxy_options() -> None:
    deployment = next(doc for _, doc in MANIFESTS if doc["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "proxy"
    ours = [a.split("=", 1)[0] for a in args[1 : args.index("--")]]
    known = proxy_options()
    assert [a for a in ours if a not in known and a not in FEED_OPTIONS] == []
    container = (DEPLOY / "Containerfile").read_text()
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", container, re.M).group(1))  # type: ignore[union-attr]
    assert cmd[0] == "proxy" and {a for a in cmd[1 : cmd.index("--")] if a.startswith("--")} <= known


def unit_copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this environment's aipolicy (verify checks the binary exists)."""
    copies = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text().replace("/usr/local/bin/aipolicy", AIPOLICY)
        name = unit.name.replace("@.", "@1.")  # verify an instance of the template
        (tmp_path / name).write_text(text)
        copies.append(tmp_path / name)
    return copies


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    copies = unit_copies(tmp_path)
    template = tmp_path / "aipolicy@.service"
    template.write_text((tmp_path / "aipolicy@1.service").read_text())  # the instance needs its template beside it
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, copies)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr and "Failed" not in result.stderr and "ignoring" not in result.stderr, (
        result.stderr
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_verify_catches_mistakes(tmp_path: Path) -> None:
    unit = next(path for path in unit_copies(tmp_path) if path.name == "aipolicy.service")
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "restart specifier" in result.stderr


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed (.ci/run installs it)")
def test_haproxy_config_is_valid() -> None:
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def test_the_units_run_the_commands_they_name() -> None:
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                command = line.split("=", 1)[1].split()
                assert command[0] == "/usr/local/bin/aipolicy", line
                assert command[1] in {"proxy", "policy", "ca"}, line
    assert os.path.exists(DEPLOY / "systemd" / "aipolicy-workers.target")


# --- every shipped deployment starts: its `aipolicy proxy` arguments pass the start-up checks ---------


def _systemd_proxy_args(unit: Path) -> list[str]:
    text = unit.read_text()
    environment = dict(re.findall(r"^Environment=(\w+)=(\S+)$", text, re.M))
    line = next(x for x in text.splitlines() if x.startswith("ExecStart=") and " proxy " in x)
    args = line.split(" proxy ", 1)[1].split()
    return [
        re.sub(r"\$\{(\w+)\}", lambda m: environment[m[1]], a).replace("%H", "host").replace("%i", "1") for a in args
    ]


def _deployment_args() -> list[str]:
    deployment = next(d for name, d in manifests() if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = list(container["args"])
    assert args[0] == "proxy"
    # the feed's key file exists only in the cluster; the feed options have tests of their own
    return [a.replace("$(POD_NAME)", "pod-1") for a in args[1:] if not a.startswith("--policy-pubkey=")]


def _containerfile_args() -> list[str]:
    import json

    line = next(x for x in (ROOT / "deploy" / "Containerfile").read_text().splitlines() if x.startswith("CMD "))
    args = json.loads(line[4:])
    assert args[0] == "proxy"
    return args[1:]


@pytest.mark.parametrize(
    "source",
    ["systemd/aipolicy.service", "systemd/aipolicy@.service", "kubernetes/deployment.yaml", "Containerfile"],
)
def test_shipped_deployment_passes_the_start_up_checks(source: str) -> None:
    from aipolicy.cli._hardening import check_public_key_ca, check_remote, sink_settings
    from aipolicy.cli._proxy import proxy

    if source.startswith("systemd/"):
        args = _systemd_proxy_args(ROOT / "deploy" / source)
    elif source.startswith("kubernetes/"):
        args = _deployment_args()
    else:
        args = _containerfile_args()
    context = proxy.make_context("proxy", list(args))  # parses as `aipolicy proxy` would, starts nothing
    params = context.params
    mitmdump_args = tuple(params["mitmdump_args"])
    check_remote(params["host"], params["allow_remote"], mitmdump_args)  # UsageError if refused
    sinks = ("syslog", "syslog_format", "syslog_ca", "webhook", "webhook_token_file", "admin")
    sink_settings(*(params[name] for name in sinks))  # UsageError for a bad --admin, --syslog or --webhook
    check_public_key_ca(mitmdump_args, Path(params["confdir"] or "~/.mitmproxy").expanduser())


def _container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    return port if isinstance(port, int) else next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def test_the_probes_ask_the_admin_listener_for_healthz() -> None:
    from aipolicy.cli._proxy import proxy

    deployment = next(d for _, d in MANIFESTS if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    params = proxy.make_context("proxy", _deployment_args()).params
    admin_host, _, admin_port = params["admin"].rpartition(":")
    assert admin_host == "0.0.0.0"  # the kubelet probes the pod's IP, not its loopback
    assert int(admin_port) != params["port"]  # never the proxied port
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]
        assert set(check) & {"tcpSocket", "exec", "grpc"} == set(), probe
        assert check["httpGet"]["path"] == "/healthz", probe
        assert _container_port(container, check["httpGet"]["port"]) == int(admin_port), probe
    service = next(d for _, d in MANIFESTS if d["kind"] == "Service")
    targets = {_container_port(container, p["targetPort"]) for p in service["spec"]["ports"]}
    assert targets == {params["port"]}  # the admin listener stays out of the load balancer
