"""When `dbt deps` and `dbt debug` have nothing new to check.

Both depend only on the project's configuration files, the dbt version and the profile's
target. Their fingerprint is recorded after each success (state/dbt/checked.json), so an
Airflow run repeats neither when nothing changed, and runs them again after any change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fhirflow.transform.runner import dbt_project_dir

if TYPE_CHECKING:
    from fhirflow.config import Settings

_FILES = {"deps": ("packages.yml", "dependencies.yml", "package-lock.yml"),
          "debug": ("dbt_project.yml", "profiles.yml")}


def _record_path(settings: Settings) -> Path:
    return settings.state_dir / "dbt" / "checked.json"


def fingerprint(settings: Settings, command: str) -> str:
    """What `command`'s outcome depends on; secrets are not part of it."""
    from importlib.metadata import version

    project = dbt_project_dir(settings)
    digest = hashlib.sha256()
    digest.update(f"dbt-core {version('dbt-core')}\n{settings.resolved_dbt_target}\n".encode())
    for name in _FILES.get(command.split()[0], ()):
        path = project / name
        digest.update(f"{name}\n".encode())
        digest.update(path.read_bytes() if path.is_file() else b"(absent)")
    if command.startswith("debug"):
        where = (settings.duckdb_path if settings.warehouse == "duckdb" else
                 f"{settings.snowflake_account}/{settings.snowflake_user}/"
                 f"{settings.snowflake_database}/{settings.snowflake_warehouse}/"
                 f"{settings.snowflake_role}")
        digest.update(f"{settings.warehouse}\n{where}\n".encode())
    elif not (project / "dbt_packages").exists() and _declares_packages(project):
        digest.update(b"packages not installed")
    return digest.hexdigest()


def _declares_packages(project: Path) -> bool:
    import yaml

    path = project / "packages.yml"
    if not path.is_file():
        return False
    doc = yaml.safe_load(path.read_text()) or {}
    return bool(doc.get("packages"))


def _read(settings: Settings) -> dict[str, dict[str, str]]:
    path = _record_path(settings)
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def unchanged_since(settings: Settings, command: str) -> str | None:
    """When `command` last succeeded with the same fingerprint, else None (run it)."""
    entry = _read(settings).get(command)
    if entry and entry.get("fingerprint") == fingerprint(settings, command):
        return entry.get("at")
    return None


def record_success(settings: Settings, command: str) -> None:
    from fhirflow.atomic import write_atomic

    doc = _read(settings)
    doc[command] = {"fingerprint": fingerprint(settings, command),
                    "at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_atomic(_record_path(settings), json.dumps(doc, indent=1).encode())
