"""docker-compose.yml, Dockerfile and .dockerignore: read and checked without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from recmatch.core.config import ES_VERSION

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE_PATH.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _image_version(image: str, repository: str) -> str:
    """The tag of an image reference, with a ${VAR:-default} tag read as its default."""
    match = re.fullmatch(re.escape(repository) + r":(?:\$\{ES_VERSION:-([^}]+)\}|([\w.\-]+))", image)
    assert match, image
    return match.group(1) or match.group(2)


def test_compose_has_the_three_services(compose):
    assert set(compose["services"]) == {"elasticsearch", "kibana", "api", "kibana-setup"}


def test_elasticsearch_and_kibana_run_the_configured_version(compose):
    services = compose["services"]
    es_version = _image_version(services["elasticsearch"]["image"], "docker.elastic.co/elasticsearch/elasticsearch")
    kibana_version = _image_version(services["kibana"]["image"], "docker.elastic.co/kibana/kibana")
    assert es_version == kibana_version == ES_VERSION


def test_elasticsearch_is_a_single_dev_node_with_security_off(compose):
    service = compose["services"]["elasticsearch"]
    environment = service["environment"]
    assert environment["discovery.type"] == "single-node"
    assert environment["xpack.security.enabled"] == "false"
    assert "-Xms1g" in environment["ES_JAVA_OPTS"] and "-Xmx1g" in environment["ES_JAVA_OPTS"]
    assert any(volume.endswith(":/usr/share/elasticsearch/data") for volume in service["volumes"])
    volume_name = service["volumes"][0].split(":", 1)[0]
    assert volume_name in compose["volumes"]
    healthcheck = " ".join(service["healthcheck"]["test"])
    assert "curl" in healthcheck and "_cluster/health" in healthcheck


def test_compose_says_what_production_changes():
    header = COMPOSE_PATH.read_text().split("\nservices:", 1)[0]
    for needle in ("xpack.security.enabled", "TLS", "RECMATCH_ES_API_KEY", "RECMATCH_ES_CA_CERTS", "replicas",
                   "heap", "secrets", "no published ports"):
        assert needle in header, needle


def test_every_published_port_is_bound_to_loopback(compose):
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert sorted(published) == ["127.0.0.1:5601:5601", "127.0.0.1:8000:8000", "127.0.0.1:9200:9200"]


def test_api_builds_from_the_dockerfile_and_waits_for_healthy_elasticsearch(compose):
    services = compose["services"]
    api = services["api"]
    assert api["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert api["environment"]["RECMATCH_ES_URL"] == "http://elasticsearch:9200"
    assert api["command"] == ["recmatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
    for name in ("api", "kibana"):
        assert services[name]["depends_on"] == {"elasticsearch": {"condition": "service_healthy"}}
    assert services["kibana"]["environment"]["ELASTICSEARCH_HOSTS"] == "http://elasticsearch:9200"


def test_dockerfile_builds_a_wheel_and_runs_it_slim(dockerfile):
    stages = [arguments for instruction, arguments in dockerfile if instruction == "FROM"]
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim AS runtime"]
    runs = [arguments for instruction, arguments in dockerfile if instruction == "RUN"]
    assert any("pip wheel" in run for run in runs)
    assert any("pip install" in run and "--no-index" in run for run in runs)
    copies = [arguments for instruction, arguments in dockerfile if instruction == "COPY"]
    assert any(copy.startswith("index_mappings") for copy in copies)


def test_dockerfile_runs_recmatch_serve_as_non_root(dockerfile):
    users = [arguments for instruction, arguments in dockerfile if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "8000") in dockerfile
    healthchecks = [arguments for instruction, arguments in dockerfile if instruction == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0] and '"python"' in healthchecks[0]
    commands = [arguments for instruction, arguments in dockerfile if instruction == "CMD"]
    assert commands[-1] == '["recmatch", "serve", "--host", "0.0.0.0", "--port", "8000"]'


def test_dockerignore_keeps_the_context_to_what_the_wheel_needs():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    for needed in ("!pyproject.toml", "!README.md", "!src/", "!index_mappings/"):
        assert rules.index("*") < rules.index(needed)  # excluded by default, let back in
    assert "**/__pycache__" in rules
