"""Export the staging layer as Synthea's 18 CSV tables.

Headers and column order are those of the newest Synthea 3.x CSV exporter
(../shared/synthea/MAPPING.md, section 1); columns with no FHIR source are written empty.
`specs.py` holds the tables (headers, SQL, formats), `formats.py` Synthea's value formats,
`writer.py` the export over the warehouse layer's connection.
"""

from fhirflow.export_csv.formats import clean
from fhirflow.export_csv.specs import TABLE_NAMES, TABLES, Column, Table, table_sql
from fhirflow.export_csv.writer import ExportResult, export_csv, export_tables

__all__ = [
    "TABLES",
    "TABLE_NAMES",
    "Column",
    "ExportResult",
    "Table",
    "clean",
    "export_csv",
    "export_tables",
    "table_sql",
]
