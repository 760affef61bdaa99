"""RAW layer on Snowflake (production): the Warehouse class (`warehouse.py`) and the
batch's two ways in (`copy_mode.py` from the S3 stage, `insert_mode.py` from local files);
the SQL text (`raw_schema.py`, `batch_sql.py`, `s3_stage.py`, `queries.py`); the session
(`client.py`: connect, transactions, secrets kept out of messages) and the sign-in (`auth.py`).
"""

from fhirflow.warehouse.snowflake.warehouse import SnowflakeWarehouse

__all__ = ["SnowflakeWarehouse"]
