{#- A select statement with one row per element of a JSON array: the `columns` of
    `relation` (a ref or CTE name), plus `value` (JSON/VARIANT) and `index` (0-based).
    Rows whose array is missing or empty yield nothing. -#}
{% macro flatten_json_array(relation, array_expr, columns) -%}
    {{ return(adapter.dispatch('flatten_json_array', 'fhirflow')(relation, array_expr, columns)) }}
{%- endmacro %}

{#- DuckDB: a select-list unnest. A lateral join over the same unnest is correlated and
    runs ~300x slower on real bundles. -#}
{% macro duckdb__flatten_json_array(relation, array_expr, columns) -%}
    select
        {% for column in columns %}{{ column }},
        {% endfor %}unnest(elements) as value,
        unnest(range(len(elements))) as index
    from (
        select
            {% for column in columns %}{{ column }},
            {% endfor %}cast(json_extract({{ array_expr }}, '$[*]') as json[]) as elements
        from {{ relation }}
    )
{%- endmacro %}

{#- Snowflake: LATERAL FLATTEN in the FROM clause, the documented form. -#}
{% macro snowflake__flatten_json_array(relation, array_expr, columns) -%}
    select
        {% for column in columns %}{{ relation }}.{{ column }},
        {% endfor %}flattened.value,
        flattened.index
    from {{ relation }},
        lateral flatten(input => {{ array_expr }}) as flattened
{%- endmacro %}

{% macro default__flatten_json_array(relation, array_expr, columns) -%}
    {{ raise_unsupported_adapter('flatten_json_array') }}
{%- endmacro %}
