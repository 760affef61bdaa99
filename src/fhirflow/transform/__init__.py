"""Transform: the dbt project run in-process, layer builds kept consistent, results summarised.

- `runner`: the one place that invokes dbt (arguments, profile environment, the release of
  dbt-duckdb's connection), plus parse/ls for selections and the auxiliary commands.
- `checked`: one checked build (`fhirflow transform`, `fhirflow run`, Airflow's layer tasks).
- `consistency`: the load ledger, and the refusal of builds that would mix loads.
- `results`: per-layer summaries from run_results.json.
"""

from fhirflow.transform.checked import LAYER_SELECTORS, Mode, build, layer_selection
from fhirflow.transform.consistency import InconsistentBuild
from fhirflow.transform.results import LayerSummary, TransformResult, summarise_run_results
from fhirflow.transform.runner import (
    Selection,
    check_installation,
    dbt_args,
    dbt_command,
    dbt_environment,
    dbt_project_dir,
    dbt_target_path,
    invoke,
    parse_vars,
    run_dbt,
)

__all__ = [
    "LAYER_SELECTORS",
    "InconsistentBuild",
    "LayerSummary",
    "Mode",
    "Selection",
    "TransformResult",
    "build",
    "check_installation",
    "dbt_args",
    "dbt_command",
    "dbt_environment",
    "dbt_project_dir",
    "dbt_target_path",
    "invoke",
    "layer_selection",
    "parse_vars",
    "run_dbt",
    "summarise_run_results",
]
