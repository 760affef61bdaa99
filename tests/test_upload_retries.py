"""Upload: bounded retries with backoff, progress, the lock, changed content."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from _helpers import land, patient_files
from fhirflow.config import Settings
from fhirflow.errors import FhirflowError
from fhirflow.store import LocalStore, StoreError, with_retries
from fhirflow.upload import _upload_lock, upload_landing


def test_with_retries_backs_off_exponentially_and_stops() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        with_retries(flaky, attempts=4, transient=lambda e: True, base_delay=1.0,
                     max_delay=3.0, sleep=sleeps.append)
    assert calls["n"] == 4 and len(sleeps) == 3
    # Exponential with jitter in [0.5, 1] of 1, 2, 3(capped).
    for got, full in zip(sleeps, [1.0, 2.0, 3.0], strict=True):
        assert full / 2 <= got <= full


def test_with_retries_does_not_retry_permanent_errors() -> None:
    calls = {"n": 0}

    def denied() -> None:
        calls["n"] += 1
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        with_retries(denied, attempts=5, transient=lambda e: False, sleep=lambda s: None)
    assert calls["n"] == 1


def test_local_put_retries_transient_io_errors(settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    land(settings.landing_dir, patient_files(3))
    store = LocalStore(settings.lake_dir)
    real_replace = os.replace
    failures = {"left": 2}

    def flaky_replace(src: str | Path, dst: str | Path) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EIO, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr("fhirflow.atomic.os.replace", flaky_replace)
    monkeypatch.setattr("fhirflow.store.time.sleep", lambda s: None)
    seen: list[tuple[int, int, int, int]] = []
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir, workers=1,
                            progress=lambda *a: seen.append(a))
    assert result.uploaded == 3
    assert seen[-1][0] == seen[-1][1] == 3 and seen[-1][2] == seen[-1][3] == result.bytes


def test_persistent_store_failure_is_one_error_and_nothing_confirmed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    land(settings.landing_dir, patient_files(2))
    store = LocalStore(settings.lake_dir, attempts=3)

    def broken(src: str | Path, dst: str | Path) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("fhirflow.atomic.os.replace", broken)
    monkeypatch.setattr("fhirflow.store.time.sleep", lambda s: None)
    with pytest.raises(FhirflowError, match="upload of patient000/b000.json failed") as info:
        upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                       state_dir=settings.state_dir, workers=1)
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, StoreError)
    monkeypatch.undo()
    # Re-run once the store works: everything uploads, each file once.
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir)
    assert result.uploaded == 2
    assert len(list(store.list_after(settings.patients_prefix, None))) == 2


def test_changed_content_is_uploaded_again(settings: Settings) -> None:
    land(settings.landing_dir, patient_files(2))
    store = LocalStore(settings.lake_dir)
    upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                   state_dir=settings.state_dir)
    land(settings.landing_dir, {"patient001/b001.json": '{"resourceType": "Bundle", "v": 2}'})
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir)
    assert (result.uploaded, result.already_uploaded) == (1, 1)
    assert len(list(store.list_after(settings.patients_prefix, None))) == 3


def test_two_uploads_at_once_are_refused(settings: Settings, tmp_path: Path) -> None:
    with _upload_lock(settings.state_dir):
        with pytest.raises(FhirflowError, match="another upload is running"):
            upload_landing(settings.landing_dir, LocalStore(settings.lake_dir),
                           prefix=settings.patients_prefix, state_dir=settings.state_dir)
