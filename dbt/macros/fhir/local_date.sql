{#- Plain SQL that DuckDB and Snowflake both run, so not dispatched.
    The date as the generator wrote it (its local date): the first 10 characters of a FHIR
    date or dateTime, without converting to UTC (Synthea's CSV date columns do the same). -#}
{% macro local_date(text_expr) -%}
    try_cast(substr({{ text_expr }}, 1, 10) as date)
{%- endmacro %}
