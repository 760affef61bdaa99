{#- A column name that a warehouse reserves as a keyword (REFERENCES on DuckDB), quoted so
    that each warehouse stores it as its unquoted form resolves: lower case on DuckDB
    (whose quoted names stay case-insensitive), upper case on Snowflake (whose unquoted
    names resolve to upper case, so readers need no quotes unless the word is reserved). -#}
{% macro keyword_identifier(name) -%}
    {{ return(adapter.dispatch('keyword_identifier', 'fhirflow')(name)) }}
{%- endmacro %}

{% macro duckdb__keyword_identifier(name) -%}
    "{{ name | lower }}"
{%- endmacro %}

{% macro snowflake__keyword_identifier(name) -%}
    "{{ name | upper }}"
{%- endmacro %}

{% macro default__keyword_identifier(name) -%}
    {{ raise_unsupported_adapter('keyword_identifier') }}
{%- endmacro %}
