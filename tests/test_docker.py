"""Dockerfile and docker-compose.yml: `docker compose config` when a docker client with the
compose plugin is here (there is no engine in CI, so only the configuration is checked),
and a structural check of both files that always runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SERVICES = {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer"}
AIRFLOW_SERVICES = SERVICES - {"postgres"}


def compose_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_", "AIRFLOW"))}
    env["AIRFLOW__API_AUTH__JWT_SECRET"] = "test-secret"
    return env


def compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    return probe.returncode == 0


@pytest.mark.skipif(not compose_available(), reason="no docker client with the compose plugin")
def test_docker_compose_config_is_valid() -> None:
    proc = subprocess.run(
        ["docker", "compose", "-f", str(REPO / "docker-compose.yml"), "config", "--format",
         "json"],
        cwd=REPO, env=compose_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    config = json.loads(proc.stdout)
    assert set(config["services"]) == SERVICES
    scheduler = config["services"]["airflow-scheduler"]
    assert scheduler["environment"]["FHIRFLOW_WAREHOUSE"] == "snowflake"
    mounts = {v["target"] for v in scheduler["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/dbt"} <= mounts


def test_compose_file_structure() -> None:
    config = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = config["services"]
    assert set(services) == SERVICES
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert "airflow pools set fhirflow_warehouse" in " ".join(commands["airflow-init"])
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        for var in ("AWS_S3_BUCKET", "AWS_S3_PREFIX", "SNOWFLAKE_DATABASE",
                    "SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_SCHEMA", "SNOWFLAKE_ROLE"):
            assert var in env, (name, var)
        mounts = {v.split(":")[1] for v in services[name]["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/dbt"} <= mounts, name
    # the API server is published on the loopback interface only
    assert all(p.startswith("127.0.0.1:") for p in services["airflow-apiserver"]["ports"])


def test_dockerfile_uses_the_official_image_and_our_pins() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in text.splitlines()
    assert "-c /opt/fhirflow/constraints.txt" in text
    assert "/opt/airflow/dags" in text and "/opt/airflow/dbt" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "data", ".env"} <= set(ignored)
