"""fhirflow.orchestration without Airflow: schedules, sensor alignment, seeds, connections,
dbt result parsing, alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from fhirflow import orchestration as orch
from fhirflow.errors import FhirflowError
from fhirflow.orchestration import alerts, connections, schedules, tasks


def test_parse_schedule() -> None:
    assert schedules.parse_schedule("10s") == timedelta(seconds=10)
    assert schedules.parse_schedule("30s") == timedelta(seconds=30)
    assert schedules.parse_schedule("5m") == timedelta(minutes=5)
    assert schedules.parse_schedule("*/5 * * * *") == "*/5 * * * *"
    assert schedules.parse_schedule("@hourly") == "@hourly"
    assert schedules.parse_schedule("none") is None


def test_defaults_are_the_seeds(clean_env: pytest.MonkeyPatch) -> None:
    ds = orch.dag_settings()
    assert schedules.parse_schedule(ds.generation_schedule) == timedelta(seconds=10)
    assert schedules.parse_schedule(ds.upload_schedule) == timedelta(seconds=30)
    assert ds.load_schedule == "*/5 * * * *"
    assert ds.transform_schedule == "*/10 * * * *"
    assert ds.transform_trigger == "time"
    assert ds.alert_recipients == []  # e-mail off by default
    args = orch.default_args(ds)
    assert args["retry_exponential_backoff"] is True and args["retries"] == 2


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("transform_at", "load_at"),
    [
        ("2026-11-25T10:10:00", "2026-11-25T10:10:00"),  # both grids meet: same run
        ("2026-11-25T10:07:00", "2026-11-25T10:05:00"),  # off-grid: the newest before
        ("2026-11-25T00:00:00", "2026-11-25T00:00:00"),
    ],
)
def test_sensor_waits_for_the_newest_load_run(
    clean_env: pytest.MonkeyPatch, transform_at: str, load_at: str
) -> None:
    assert schedules.latest_load_logical_date(at(transform_at)) == at(load_at)


def test_sensor_follows_the_load_schedule(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FHIRFLOW_LOAD_SCHEDULE", "*/15 * * * *")
    found = schedules.latest_load_logical_date(at("2026-11-25T10:40:00"))
    assert found == at("2026-11-25T10:30:00")


def test_asset_triggered_run_waits_for_the_emitting_load(clean_env: pytest.MonkeyPatch) -> None:
    event = SimpleNamespace(extra={"load_logical_date": "2026-11-25T10:05:00+00:00"})
    older = SimpleNamespace(extra={"load_logical_date": "2026-11-25T10:00:00+00:00"})
    found = schedules.latest_load_logical_date(
        at("2026-11-25T10:06:31"), triggering_asset_events={"raw": [older, event]}
    )
    assert found == at("2026-11-25T10:05:00")


def test_seed_per_run_differs_between_runs_and_repeats_on_retry() -> None:
    run, other = "scheduled__2026-11-25T10:00:00+00:00", "scheduled__2026-11-25T10:00:10+00:00"
    a = schedules.seed_for_run(0, "synthea_generation", run)
    assert a != schedules.seed_for_run(0, "synthea_generation", other)
    assert a == schedules.seed_for_run(0, "synthea_generation", run)
    assert a != schedules.seed_for_run(1, "synthea_generation", run)


def conn(**kw: object) -> SimpleNamespace:
    kw.setdefault("extra_dejson", {})
    return SimpleNamespace(**{"host": None, "login": None, "password": None, "schema": None,
                              **kw})


def test_connections_are_ignored_on_the_embedded_defaults(clean_env: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path))
    asked: list[str] = []
    ts = connections.settings_for_task(lambda cid: asked.append(cid) or conn(login="x"))
    assert asked == []  # local store + DuckDB need no connection
    assert ts.settings.store == "local" and ts.settings.warehouse == "duckdb"
    assert ts.env == {}


def test_connections_supply_s3_and_snowflake(clean_env: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path))
    clean_env.setenv("FHIRFLOW_STORE", "s3")
    clean_env.setenv("FHIRFLOW_WAREHOUSE", "snowflake")
    clean_env.setenv("SNOWFLAKE_DATABASE", "FROM_ENV")
    defined = {
        "aws_default": conn(login="AKIA", password="secret",
                            extra_dejson={"region_name": "eu-west-1",
                                          "endpoint_url": "http://127.0.0.1:9"}),
        "snowflake_default": conn(login="svc", password="pw", schema="RAW",
                                  extra_dejson={"account": "ab123", "warehouse": "WH",
                                                "role": "LOADER"}),
    }
    ts = connections.settings_for_task(defined.get)
    s = ts.settings
    assert (s.aws_region, s.aws_endpoint_url) == ("eu-west-1", "http://127.0.0.1:9")
    assert ts.env == {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "secret"}
    assert (s.snowflake_account, s.snowflake_user, s.snowflake_warehouse) == ("ab123", "svc", "WH")
    assert s.snowflake_password.get_secret_value() == "pw"
    assert s.snowflake_role == "LOADER"
    assert s.snowflake_database == "FROM_ENV"  # not in the connection: settings keep theirs
    assert "connection aws_default" in ts.sources["store"]
    with ts.active():
        import os

        assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIA"
    import os

    assert "AWS_ACCESS_KEY_ID" not in os.environ


def test_without_connections_settings_come_from_the_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path))
    clean_env.setenv("FHIRFLOW_WAREHOUSE", "snowflake")
    clean_env.setenv("SNOWFLAKE_ACCOUNT", "envacct")
    ts = connections.settings_for_task(lambda _cid: None)
    assert ts.settings.snowflake_account == "envacct"
    assert ts.sources["warehouse"] == "snowflake (settings)"


def test_connection_mappings_name_real_settings_and_mask_secrets() -> None:
    from fhirflow.config import Settings

    for mapping in connections.MAPPINGS:
        for target in mapping.fields:
            # lower case: a Settings field; upper case: an exported environment variable
            assert target.isupper() or target in Settings.model_fields, target
        moved = {target for _present, _source, target in mapping.moved_when}
        assert mapping.secret_fields <= set(mapping.fields) | moved
        assert moved <= set(Settings.model_fields)
    sf = conn(login="svc", password="hunter2", extra_dejson={"account": "ab123"})
    values = connections.SNOWFLAKE.values(sf)
    assert values == {"snowflake_account": "ab123", "snowflake_user": "svc",
                      "snowflake_password": "hunter2"}
    shown = connections.SNOWFLAKE.describe(values)
    assert "hunter2" not in shown and "snowflake_password=***" in shown
    assert "snowflake_user=svc" in shown
    # key pair, as the Snowflake provider takes it: the password is the key's passphrase
    keyed = conn(login="svc", password="s3cret", extra_dejson={
        "account": "ab123", "private_key_file": "/keys/svc.p8", "authenticator": "snowflake_jwt"})
    values = connections.SNOWFLAKE.values(keyed)
    assert values["snowflake_private_key_passphrase"] == "s3cret"
    assert "snowflake_password" not in values
    assert values["snowflake_private_key_path"] == "/keys/svc.p8"
    assert "s3cret" not in connections.SNOWFLAKE.describe(values)


def test_connection_fallbacks_host_as_account_and_nested_endpoint(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path))
    clean_env.setenv("FHIRFLOW_STORE", "s3")
    clean_env.setenv("FHIRFLOW_WAREHOUSE", "snowflake")
    defined = {
        "aws_default": conn(extra_dejson={
            "aws_access_key_id": "AKIAEXTRA", "aws_secret_access_key": "s3cr3t",
            "service_config": {"s3": {"endpoint_url": "http://127.0.0.1:7"}}}),
        # the account in the host field, as Airflow's UI offers it: never a test server
        "snowflake_default": conn(host="xy98765", login="u", password="p"),
    }
    ts = connections.settings_for_task(defined.get)
    assert ts.settings.aws_endpoint_url == "http://127.0.0.1:7"
    assert ts.settings.snowflake_account == "xy98765"
    assert ts.settings.snowflake_host is None
    assert ts.env["AWS_ACCESS_KEY_ID"] == "AKIAEXTRA"
    # The connection's keys are the settings' too (the Snowflake stage is given them).
    assert ts.settings.aws_access_key_id == "AKIAEXTRA"
    assert ts.settings.aws_secret_access_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in ts.sources["store"] and "AKIAEXTRA" not in ts.sources["store"]


def write_results(target: Path, results: list[dict], nodes: dict) -> None:
    target.mkdir(parents=True)
    (target / "run_results.json").write_text(json.dumps({"results": results}))
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes}))


def model(name: str, layer: str) -> tuple[str, dict]:
    uid = f"model.fhirflow.{name}"
    return uid, {"resource_type": "model", "fqn": ["fhirflow", layer, name]}


def test_parse_results_logs_layers_and_passes(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    nodes = dict([model("stg_patients", "staging"), model("stg_encounters", "staging")])
    write_results(tmp_path / "t", [
        {"unique_id": "model.fhirflow.stg_patients", "status": "success", "execution_time": 1.5},
        {"unique_id": "model.fhirflow.stg_encounters", "status": "skipped", "execution_time": 0},
    ], nodes)
    caplog.set_level("INFO", logger="fhirflow.orchestration")
    report = tasks.parse_dbt_results(tmp_path / "t", "staging")
    assert report["layers"]["staging"]["models_ok"] == 1
    assert report["layers"]["staging"]["models_skipped"] == 1
    assert "1 succeeded, 0 failed, 1 skipped" in caplog.text
    assert "stg_patients" in caplog.text and "1.50s" in caplog.text


def test_parse_results_fails_on_a_failed_model_or_test(tmp_path: Path) -> None:
    nodes = dict([model("dim_patients", "marts")])
    write_results(tmp_path / "m", [
        {"unique_id": "model.fhirflow.dim_patients", "status": "error", "execution_time": 0.2,
         "message": "Catalog Error: no such table"},
    ], nodes)
    with pytest.raises(FhirflowError, match="dim_patients"):
        tasks.parse_dbt_results(tmp_path / "m", "marts")
    nodes["test.fhirflow.unique_dim_patients_patient_id.abc"] = {
        "resource_type": "test", "depends_on": {"nodes": ["model.fhirflow.dim_patients"]}}
    write_results(tmp_path / "x", [
        {"unique_id": "test.fhirflow.unique_dim_patients_patient_id.abc", "status": "fail",
         "execution_time": 0.1, "message": "Got 2 results"},
    ], nodes)
    with pytest.raises(FhirflowError, match="unique_dim_patients_patient_id"):
        tasks.parse_dbt_results(tmp_path / "x", "test", tests=True)


def test_failure_callback_logs_and_sends_no_mail_by_default(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ti = SimpleNamespace(dag_id="s3_upload", task_id="upload_to_s3", run_id="r1", try_number=3)
    alerts.on_task_failure({"ti": ti, "exception": RuntimeError("bucket gone")})
    assert "s3_upload.upload_to_s3 failed (run r1, try 3): bucket gone" in caplog.text


def test_failure_callback_mails_when_configured(
    clean_env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict] = []
    monkeypatch.setattr(alerts, "send_alert_email",
                        lambda to, conn_id, subject, html, ctx: sent.append(
                            {"to": to, "conn": conn_id, "subject": subject}))
    clean_env.setenv("FHIRFLOW_ALERT_EMAIL", "oncall@example.org, data@example.org")
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", try_number=1)
    alerts.on_task_failure({"ti": ti, "exception": ValueError("x")})
    assert sent and sent[0]["to"] == ["oncall@example.org", "data@example.org"]
    assert sent[0]["subject"] == "[fhirflow] d.t failed"


class FakeTI:
    """The part of Airflow's RuntimeTaskInstance the sensor's date function uses."""

    def __init__(self, runs: list[datetime]) -> None:
        self.runs = set(runs)

    def get_dr_count(self, dag_id: str, logical_dates: list[datetime]) -> int:
        assert dag_id == "s3_to_snowflake_load"
        return sum(1 for d in logical_dates if d in self.runs)


def test_sensor_waits_for_a_run_about_to_be_created(clean_env: pytest.MonkeyPatch,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    tick = now - timedelta(minutes=now.minute % 5)
    ti = FakeTI([tick - timedelta(minutes=5)])  # the older run exists, the new one not yet
    found = schedules.existing_load_tick(ti, "*/5 * * * *", tick, tick + timedelta(seconds=5))
    assert found == tick


def test_sensor_finds_the_load_run_that_exists(clean_env: pytest.MonkeyPatch) -> None:
    # The transform's first run is for 19:08 but the load DAG's first run was 19:10
    # (catchup is off): wait for 19:10 rather than for a run that will never exist.
    ti = FakeTI([at("2026-11-25T19:10:00")])
    found = schedules.existing_load_tick(ti, "*/2 * * * *", at("2026-11-25T19:08:00"),
                                     at("2026-11-25T19:11:30"))
    assert found == at("2026-11-25T19:10:00")
    # none anywhere near: wait for the tick itself (and time out if it never comes)
    assert schedules.existing_load_tick(FakeTI([]), "*/2 * * * *", at("2026-11-25T19:08:00"),
                                    at("2026-11-25T19:11:30")) == at("2026-11-25T19:08:00")
    # only an older one exists: take it
    ti = FakeTI([at("2026-11-25T19:04:00")])
    assert schedules.existing_load_tick(ti, "*/2 * * * *", at("2026-11-25T19:08:00"),
                                    at("2026-11-25T19:08:00") + timedelta(minutes=3)
                                    ) == at("2026-11-25T19:04:00")


def test_generation_seed_follows_the_logical_date_not_the_trigger_time() -> None:
    """Regression: the seed came from the run id, which for manual and dag.test() runs
    holds the trigger time, so the same interval generated different patients each time."""
    from datetime import UTC, datetime

    when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    first = schedules.seed_for_run(0, "synthea_generation",
                              schedules.run_key(when, "manual__2026-11-25T20:01:02+00:00"))
    again = schedules.seed_for_run(0, "synthea_generation",
                              schedules.run_key(when, "manual__2026-11-25T21:03:04+00:00"))
    assert first == again
    assert schedules.run_key(None, "manual__x") == "manual__x"
