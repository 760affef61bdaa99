{#- The JSON (VARIANT on Snowflake) value at a path, for nested access or flattening. -#}
{% macro json_value(expr, path) -%}
    {{ return(adapter.dispatch('json_value', 'fhirflow')(expr, path)) }}
{%- endmacro %}

{% macro duckdb__json_value(expr, path) -%}
    json_extract({{ expr }}, '$.{{ path }}')
{%- endmacro %}

{% macro snowflake__json_value(expr, path) -%}
    {{ expr }}:{{ path }}
{%- endmacro %}

{% macro default__json_value(expr, path) -%}
    {{ raise_unsupported_adapter('json_value') }}
{%- endmacro %}
