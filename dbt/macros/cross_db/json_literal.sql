{#- A JSON document written as SQL text, as the warehouse's JSON type (VARIANT on
    Snowflake): for unit-test fixtures and constants. -#}
{% macro json_literal(text) -%}
    {{ return(adapter.dispatch('json_literal', 'fhirflow')(text)) }}
{%- endmacro %}

{% macro duckdb__json_literal(text) -%}
    cast('{{ text | replace("'", "''") }}' as json)
{%- endmacro %}

{#- PARSE_JSON: a cast of text to VARIANT keeps the text as one string value. -#}
{% macro snowflake__json_literal(text) -%}
    parse_json('{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}')
{%- endmacro %}

{% macro default__json_literal(text) -%}
    {{ raise_unsupported_adapter('json_literal') }}
{%- endmacro %}
