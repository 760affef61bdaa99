"""SQL on FHIR v2: ViewDefinitions compiled to one SQL SELECT for DuckDB or Snowflake.

    compiled = compile_view(json.load(open("view.json")), "snowflake")
    compiled.sql, compiled.columns

The pieces, in the order a view goes through them: definition (checks the ViewDefinition),
fhirpath (parses its expressions), expressions + functions (FHIRPath -> SQL with the FHIR
model's types), plan (the select tree -> row-generating steps), render (one SELECT per
dialect). runner, suite, dbt_models and cli use the result.
"""

from fhirflow.views.compiler import CompiledView, compile_view
from fhirflow.views.definition import InvalidViewError, View, parse_view
from fhirflow.views.render import Source

__all__ = ["CompiledView", "InvalidViewError", "Source", "View", "compile_view", "parse_view"]
