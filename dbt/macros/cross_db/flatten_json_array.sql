{#- A FROM-clause fragment that yields one row per element of a JSON array, as
    `<alias>.value` (JSON/VARIANT) and `<alias>.index` (0-based position). Rows whose array
    is missing or empty yield nothing. -#}
{% macro flatten_json_array(array_expr, alias) -%}
    {{ return(adapter.dispatch('flatten_json_array', 'fhirflow')(array_expr, alias)) }}
{%- endmacro %}

{% macro default__flatten_json_array(array_expr, alias) -%}
    cross join lateral (
        select u.value, u.ord - 1 as index
        from unnest(json_extract({{ array_expr }}, '$[*]')) with ordinality as u(value, ord)
    ) as {{ alias }}
{%- endmacro %}

{% macro snowflake__flatten_json_array(array_expr, alias) -%}
    , lateral flatten(input => {{ array_expr }}) as {{ alias }}
{%- endmacro %}
