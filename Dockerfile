# fhirflow on the official Airflow image: the four DAGs, dbt (duckdb + snowflake adapters)
# and the fhirflow package, pinned by constraints.txt (Airflow's own constraint files cannot
# be downloaded from our build machines; ours was frozen from a working Airflow 3.3.2 venv).
#
#   docker build -t fhirflow-airflow .
#
# docker-compose.yml mounts ./dags on /opt/airflow/dags and ./dbt on /opt/airflow/dbt (the
# seed's layout); copies of both are baked in so the image also runs without the mounts.
FROM apache/airflow:3.3.2-python3.11

ENV FHIRFLOW_HOME=/opt/airflow/data \
    FHIRFLOW_DBT_PROJECT_DIR=/opt/airflow/dbt \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    DO_NOT_TRACK=1

COPY --chown=airflow:root pyproject.toml constraints.txt README.md /opt/fhirflow/
COPY --chown=airflow:root src /opt/fhirflow/src
# Pinning apache-airflow to the image's version keeps pip from moving Airflow itself.
RUN pip install --no-cache-dir -c /opt/fhirflow/constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" "/opt/fhirflow[airflow,snowflake]"

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root dbt /opt/airflow/dbt
USER root
RUN mkdir -p /opt/airflow/data && chown -R airflow:root /opt/airflow/data /opt/airflow/dbt \
    && chmod -R g+rwX /opt/airflow/data /opt/airflow/dbt
USER airflow
