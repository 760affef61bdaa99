"""RAW layer on Snowflake (production): the SQL text (`sql.py`), the session (`client.py`:
connect, transactions, secrets kept out of messages) and the Warehouse class (`warehouse.py`).
"""

from fhirflow.warehouse.snowflake.warehouse import SnowflakeWarehouse

__all__ = ["SnowflakeWarehouse"]
