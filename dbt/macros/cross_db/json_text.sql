{#- A scalar at a JSON path, as text. `path` is dotted with [n] indexes: 'code.coding[0].code'. -#}
{% macro json_text(expr, path) -%}
    {{ return(adapter.dispatch('json_text', 'fhirflow')(expr, path)) }}
{%- endmacro %}

{% macro duckdb__json_text(expr, path) -%}
    json_extract_string({{ expr }}, '$.{{ path }}')
{%- endmacro %}

{% macro snowflake__json_text(expr, path) -%}
    {{ expr }}:{{ path }}::varchar
{%- endmacro %}

{% macro default__json_text(expr, path) -%}
    {{ raise_unsupported_adapter('json_text') }}
{%- endmacro %}
