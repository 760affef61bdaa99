{#- A number at a JSON path as double; null when absent or not numeric. -#}
{% macro json_number(expr, path) -%}
    {{ return(adapter.dispatch('json_number', 'fhirflow')(expr, path)) }}
{%- endmacro %}

{% macro duckdb__json_number(expr, path) -%}
    try_cast(json_extract_string({{ expr }}, '$.{{ path }}') as double)
{%- endmacro %}

{% macro snowflake__json_number(expr, path) -%}
    try_cast({{ expr }}:{{ path }}::varchar as double)
{%- endmacro %}

{% macro default__json_number(expr, path) -%}
    {{ raise_unsupported_adapter('json_number') }}
{%- endmacro %}
