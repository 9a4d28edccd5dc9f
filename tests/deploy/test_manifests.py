"""The deployment files under docs/deploy/ are valid: the compose file by docker-compose's own `config` (no daemon
needed) and every Kubernetes manifest against the Kubernetes API's schemas (kubernetes-validate, strict: unknown
fields are errors). They also keep what docs/deploy.md promises: probes, limits, secrets from a Secret."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
KUBERNETES_VERSION = "1.30"


def _documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append(
                    (
                        f"{path.relative_to(DEPLOY)}:{document['kind']}/{document['metadata']['name']}",
                        document,
                    )
                )
    return found


def test_every_kubernetes_manifest_matches_the_api_schema() -> None:
    documents = _documents()
    assert len(documents) >= 15
    for label, document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{label}: {exc.message} at {list(exc.path)}") from None


def test_the_manifests_keep_their_promises() -> None:
    documents = dict(_documents())
    deployments = {d["metadata"]["name"]: d for d in documents.values() if d["kind"] == "Deployment"}
    assert set(deployments) >= {"hub-web", "hub-router", "hub-worker", "hub-recorder", "hub-scheduler"}
    for name, deployment in deployments.items():
        if name == "fluent-bit":
            continue
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert {"secretRef": {"name": "hub-secrets"}} in container["envFrom"], name
    for name in ("hub-web", "hub-router"):
        [container] = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]
        for d in documents.values()
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert scaled == {"hub-router", "hub-worker"}
    assert deployments["hub-scheduler"]["spec"]["replicas"] == 2  # one active, one standing by


def test_the_compose_file_is_valid() -> None:
    if shutil.which("docker-compose") is None:
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "docker-compose is not installed (apt-get install docker-compose); .ci/run installs it"
            )
        pytest.skip("needs docker-compose (apt-get install docker-compose)")
    env = {**os.environ, "POSTGRES_PASSWORD": "example", "HUB_SECRET_KEYS": "k1:example"}
    result = subprocess.run(["docker-compose", "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = subprocess.run(["docker-compose", "-f", str(DEPLOY / "docker-compose.yml"), "config"],
                              capture_output=True, text=True, env=env, timeout=60).stdout  # fmt: skip
    services = yaml.safe_load(rendered)["services"]
    assert services["worker"]["deploy"]["replicas"] == 3 and services["router"]["deploy"]["replicas"] == 2
    assert {"postgres", "redis", "migrate", "web", "proxy", "recorder", "scheduler"} <= set(services)
    missing = subprocess.run(["docker-compose", "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"],
                             capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in env.items() if k != "HUB_SECRET_KEYS"})  # fmt: skip
    assert missing.returncode != 0 and "HUB_SECRET_KEYS" in missing.stderr  # no hub without its key ring
