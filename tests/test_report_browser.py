"""The report in a real browser: Debian's headless Chromium opens the file from disk.

Checks that every chart was drawn (Plotly's SVG with marks in it), that the page logged
nothing to the console (no script error, no Content-Security-Policy refusal), and that the
page sent no request: Chromium's NetLog records every URL request the page starts, and the
test first shows on a deliberately leaky page that this check does see requests. Host
names resolve to nothing during the test (`--host-resolver-rules`), so even Chromium's own
background calls leave no trace on the network.

A screenshot (and a print to PDF) are kept as artifacts in $FHIRFLOW_TEST_ARTIFACTS, by
default <tmp>/fhirflow-test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.test_report import CHARTS, build_warehouse

from fhirflow.config import Settings
from fhirflow.report import ReportResult, build_report

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"headless Chromium not found at {CHROMIUM}: install Debian's package with "
                "`apt-get install chromium` to run the browser tests", allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=15000"]
WINDOW = (1280, 7000)  # tall enough for the whole page in one screenshot


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("FHIRFLOW_TEST_ARTIFACTS")
                  or Path(tempfile.gettempdir()) / "fhirflow-test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browsed:
    def __init__(self, stdout: str, stderr: str, netlog: Path) -> None:
        self.stdout = stdout
        self.console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
        self.requests = page_requests(netlog)


def browse(page: Path, tmp: Path, *extra: str) -> Browsed:
    tmp.mkdir(parents=True, exist_ok=True)
    netlog = tmp / "netlog.json"
    proc = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp / 'profile'}",
         f"--log-net-log={netlog}", *extra, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Browsed(proc.stdout, proc.stderr, netlog)


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for: URL requests whose network isolation key is the file's
    (Chromium's own background requests carry none)."""
    doc = json.loads(netlog.read_text())
    start = doc["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in doc["events"]:
        params = event.get("params") or {}
        if event["type"] != start or "url" not in params:
            continue
        if str(params.get("network_isolation_key", "")).startswith("file://"):
            urls.append(params["url"])
    return urls


class ChartMarks(HTMLParser):
    """Per chart (<figure data-chart=...>): Plotly's SVG roots and the marks drawn in them
    (bars and points, pie slices, heatmap images)."""

    MARKS = {"point", "slice", "hm"}

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.depth = 0
        self.svgs: dict[str, int] = {}
        self.marks: dict[str, int] = {}
        self.drawn: dict[str, bool] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and a.get("data-chart"):
            self.current, self.depth = a["data-chart"], 0
            self.drawn[self.current] = a.get("data-drawn") == "true"
            self.svgs[self.current] = self.marks[self.current] = 0
        if self.current is None:
            return
        if tag == "figure":
            self.depth += 1
        classes = set((a.get("class") or "").split())
        if tag == "svg" and "main-svg" in classes:
            self.svgs[self.current] += 1
        if classes & self.MARKS:
            self.marks[self.current] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self.current is not None:
            self.depth -= 1
            if self.depth == 0:
                self.current = None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportResult]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        home = tmp_path_factory.mktemp("browser") / "home"
        settings: Settings = build_warehouse(home, patients=12, seed=21, bad=True)
        yield build_report(settings, home / "report")


def test_the_network_check_sees_a_page_that_sends_requests(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<p>x</p><img src="http://fhirflow-test.invalid/a.png">'
                     "<script>fetch('https://fhirflow-test.invalid/b').catch(() => 0)</script>")
    seen = browse(leaky, tmp_path / "run", "--dump-dom")
    assert sorted(seen.requests) == ["http://fhirflow-test.invalid/a.png",
                                     "https://fhirflow-test.invalid/b"]


def test_every_chart_renders_offline_without_a_request(report: ReportResult,
                                                       tmp_path: Path) -> None:
    assert report.drawn == CHARTS
    seen = browse(report.path, tmp_path, "--dump-dom")
    marks = ChartMarks()
    marks.feed(seen.stdout)
    assert sorted(marks.drawn) == sorted(CHARTS)
    for key in CHARTS:
        assert marks.drawn[key], key
        assert marks.svgs[key] >= 1, f"{key}: Plotly drew no SVG"
        assert marks.marks[key] >= 1, f"{key}: the SVG holds no bar, slice or cell"
    # Plotly marks each div it has plotted.
    assert len(re.findall(r'class="plotly-graph-div js-plotly-plot"', seen.stdout)) == len(CHARTS)
    assert seen.console == []  # no script error, no CSP refusal
    assert seen.requests == []


def test_screenshot_and_print_are_kept(report: ReportResult, tmp_path: Path) -> None:
    out = artifacts_dir()
    shot, pdf = out / "report.png", out / "report.pdf"
    for old in (shot, pdf):
        old.unlink(missing_ok=True)
    browse(report.path, tmp_path / "shot", f"--window-size={WINDOW[0]},{WINDOW[1]}",
           f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == WINDOW
    # A page with only text (the charts missing) compresses to a small fraction of this.
    assert len(data) > 150_000, len(data)
    seen = browse(report.path, tmp_path / "print", "--no-pdf-header-footer",
                  f"--print-to-pdf={pdf}")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert 3 <= pages <= 20, pages
    assert seen.requests == []
