{#- Written between a CTE's `as` and its body (`name as {{ materialized_cte() }} (`): compute
    this CTE once. For a narrow CTE that two later steps read: DuckDB otherwise inlines it
    into both and, to share the scan, materializes the CTE it reads instead (the resources
    with their whole JSON), which is slower and holds every document in memory. -#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'fhirflow')()) }}
{%- endmacro %}

{% macro duckdb__materialized_cte() -%}
    materialized
{%- endmacro %}

{#- Snowflake plans a CTE read twice itself and has no such hint: nothing. -#}
{% macro snowflake__materialized_cte() -%}
{%- endmacro %}

{% macro default__materialized_cte() -%}
    {{ raise_unsupported_adapter('materialized_cte') }}
{%- endmacro %}
