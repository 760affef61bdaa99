"""The real-Synthea runner: its command line, its errors, and landing Synthea's output."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from _generate_helpers import SAMPLE_DIR, SAMPLE_MISSING
from fhirflow.errors import ConfigError, FhirflowError
from fhirflow.generate import run_synthea, synthea_command
from fhirflow.generate.synthea import ingest_output


def test_synthea_command_uses_synthea_cli_flags(tmp_path: Path) -> None:
    cmd = synthea_command(jar=Path("/opt/synthea-with-dependencies.jar"), patients=25, seed=7,
                          years_of_history=10, state="Massachusetts", output_dir=tmp_path / "out",
                          reference_date=dt.date(2024, 4, 27), java="/usr/bin/java")
    assert cmd[:3] == ["/usr/bin/java", "-jar", "/opt/synthea-with-dependencies.jar"]
    assert cmd[cmd.index("-p") + 1] == "25"
    assert cmd[cmd.index("-s") + 1] == "7"
    assert cmd[cmd.index("-r") + 1] == "20240427"
    assert "--exporter.years_of_history=10" in cmd
    assert "--exporter.fhir.export=true" in cmd
    assert f"--exporter.baseDirectory={tmp_path / 'out'}" in cmd
    assert cmd[-1] == "Massachusetts"


def test_synthea_command_without_reference_date_leaves_it_to_synthea(tmp_path: Path) -> None:
    cmd = synthea_command(jar=Path("s.jar"), patients=1, seed=1, years_of_history=5, state="Texas",
                          output_dir=tmp_path)
    assert "-r" not in cmd and cmd[0] == "java"


def test_missing_jar_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        run_synthea(tmp_path, jar=tmp_path / "nope.jar", patients=1, seed=1, years_of_history=1,
                    state="Utah")
    assert "\n" not in str(err.value) and "nope.jar" in str(err.value)


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    jar = tmp_path / "synthea.jar"
    jar.write_bytes(b"PK")
    with pytest.raises(FhirflowError) as err:
        run_synthea(tmp_path / "landing", jar=jar, patients=1, seed=1, years_of_history=1,
                    state="Utah",
                    java="no-such-java-binary-here")
    assert "\n" not in str(err.value) and "no-such-java-binary-here" in str(err.value)


@pytest.mark.skipif(not SAMPLE_DIR.is_dir(), reason=SAMPLE_MISSING)
def test_synthea_output_folder_moves_into_landing_layout(tmp_path: Path) -> None:
    output = tmp_path / "output"
    shutil.copytree(SAMPLE_DIR, output / "fhir")  # never touch the shared sample itself
    landing = tmp_path / "landing"
    result = ingest_output(output, landing)
    assert result.patients == 10 and result.files == 12
    assert not list((output / "fhir").glob("*.json")), "files are moved, not copied"
    assert sorted(p.name for p in (landing / "_run").iterdir()) == [
        "hospitalInformation1714182814995.json", "practitionerInformation1714182814995.json"]
    for path in landing.glob("*/*.json"):
        if path.parent.name != "_run":
            assert path.name.endswith(f"_{path.parent.name}.json")


@pytest.mark.skipif(not SAMPLE_DIR.is_dir(), reason=SAMPLE_MISSING)
@pytest.mark.skipif(os.name == "nt", reason="uses a shebang script as a stand-in for java")
def test_run_synthea_end_to_end_with_a_stand_in_java(tmp_path: Path) -> None:
    """A fake `java` that writes the shared sample where Synthea would write its output."""
    fake = tmp_path / "fakejava"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "base = [a.split('=', 1)[1] for a in sys.argv "
        "if a.startswith('--exporter.baseDirectory=')][0]\n"
        f"shutil.copytree({str(SAMPLE_DIR)!r}, base + '/fhir')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    jar = tmp_path / "synthea.jar"
    jar.write_bytes(b"PK")
    landing = tmp_path / "landing"
    result = run_synthea(landing, jar=jar, patients=10, seed=1714182814995, years_of_history=10,
                         state="Massachusetts", java=str(fake), workdir=tmp_path / "work")
    assert result.patients == 10 and result.files == 12
    assert len([p for p in landing.iterdir() if p.name != "_run"]) == 10
    assert not list((tmp_path / "work").iterdir()), "scratch output is cleaned up"


def test_failing_synthea_is_one_clear_line(tmp_path: Path) -> None:
    fake = tmp_path / "failjava"
    fake.write_text(f"#!{sys.executable}\nimport sys\n"
                    "print('boom: bad state', file=sys.stderr)\nsys.exit(3)\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    jar = tmp_path / "synthea.jar"
    jar.write_bytes(b"PK")
    with pytest.raises(FhirflowError, match="code 3: boom: bad state"):
        run_synthea(tmp_path / "landing", jar=jar, patients=1, seed=1, years_of_history=1,
                    state="X",
                    java=str(fake))
