{#- A select statement with one row per day, `date_day`, from `start_column` to
    `end_column` (both included) of the single row of `relation`. -#}
{% macro date_spine_days(relation, start_column, end_column) -%}
    {{ return(adapter.dispatch('date_spine_days', 'fhirflow')(relation, start_column, end_column)) }}
{%- endmacro %}

{% macro duckdb__date_spine_days(relation, start_column, end_column) -%}
    select cast(unnest(generate_series(
        cast({{ start_column }} as date), cast({{ end_column }} as date), interval 1 day
    )) as date) as date_day
    from {{ relation }}
{%- endmacro %}

{#- Snowflake: FLATTEN over ARRAY_GENERATE_RANGE, whose bounds may come from the data
    (GENERATOR's ROWCOUNT must be a constant). -#}
{% macro snowflake__date_spine_days(relation, start_column, end_column) -%}
    select dateadd(day, days.index, cast({{ relation }}.{{ start_column }} as date)) as date_day
    from {{ relation }},
        lateral flatten(input => array_generate_range(
            0, datediff(day, {{ relation }}.{{ start_column }}, {{ relation }}.{{ end_column }}) + 1
        )) as days
{%- endmacro %}

{% macro default__date_spine_days(relation, start_column, end_column) -%}
    {{ raise_unsupported_adapter('date_spine_days') }}
{%- endmacro %}
