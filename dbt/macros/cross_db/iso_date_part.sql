{#- An ISO 8601 part of a date as an integer: 'weekday' (1 = Monday .. 7 = Sunday),
    'week' (1..53) or 'year' (the ISO week's year, which differs from the calendar year
    around New Year). -#}
{% macro iso_date_part(part, date_expr) -%}
    {%- if part not in ('weekday', 'week', 'year') -%}
        {{ exceptions.raise_compiler_error(
            "iso_date_part: part must be 'weekday', 'week' or 'year', not '" ~ part ~ "'") }}
    {%- endif -%}
    {{ return(adapter.dispatch('iso_date_part', 'fhirflow')(part, date_expr)) }}
{%- endmacro %}

{% macro duckdb__iso_date_part(part, date_expr) -%}
    {%- set names = {'weekday': 'isodow', 'week': 'week', 'year': 'isoyear'} -%}
    cast(extract({{ names[part] }} from {{ date_expr }}) as integer)
{%- endmacro %}

{% macro snowflake__iso_date_part(part, date_expr) -%}
    {%- set names = {'weekday': 'dayofweekiso', 'week': 'weekiso', 'year': 'yearofweekiso'} -%}
    cast(extract({{ names[part] }} from {{ date_expr }}) as integer)
{%- endmacro %}

{% macro default__iso_date_part(part, date_expr) -%}
    {{ raise_unsupported_adapter('iso_date_part') }}
{%- endmacro %}
