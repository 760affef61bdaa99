"""The failure callback every task carries: one log line, and an e-mail when configured."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fhirflow.config import load_dag_settings
from fhirflow.errors import FhirflowError

log = logging.getLogger(__name__)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Log one line per failed task; e-mail it when FHIRFLOW_ALERT_EMAIL is set."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", context.get("run_id", "?"))
    try_number = getattr(ti, "try_number", "?")
    exc = context.get("exception")
    summary = f"{dag_id}.{task_id} failed (run {run_id}, try {try_number}): {exc}"
    log.error("%s", summary)
    try:
        ds = load_dag_settings()
    except FhirflowError:
        return
    if not ds.alert_recipients:
        return
    try:
        send_alert_email(ds.alert_recipients, ds.smtp_conn_id,
                         f"[fhirflow] {dag_id}.{task_id} failed", f"<p>{summary}</p>", context)
    except Exception:
        log.exception("could not send the failure e-mail to %s", ds.alert_recipients)


def send_alert_email(to: list[str], smtp_conn_id: str, subject: str, html: str,
                     context: Mapping[str, Any]) -> None:
    """Through the SMTP provider's notifier and the `smtp_default` connection."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(to=to, smtp_conn_id=smtp_conn_id, subject=subject,
                 html_content=html).notify(dict(context))
