{#- The first element of the array at `array_path` whose `match_path` equals `match_value`:
    as text at `return_path` when one is given, else as JSON (VARIANT on Snowflake).
    E.g. the SSN among a Patient's identifiers, or the race extension among its extensions. -#}
{% macro json_array_find(expr, array_path, match_path, match_value, return_path=none) -%}
    {{ return(adapter.dispatch('json_array_find', 'fhirflow')(expr, array_path, match_path, match_value, return_path)) }}
{%- endmacro %}

{% macro default__json_array_find(expr, array_path, match_path, match_value, return_path) -%}
    {%- set element -%}
        list_filter(
            json_extract({{ expr }}, '$.{{ array_path }}[*]'),
            lambda x: json_extract_string(x, '$.{{ match_path }}') = '{{ match_value }}'
        )[1]
    {%- endset -%}
    {%- if return_path -%}
        json_extract_string({{ element }}, '$.{{ return_path }}')
    {%- else -%}
        {{ element }}
    {%- endif -%}
{%- endmacro %}

{#- Snowflake: a scalar subquery over FLATTEN taking the first match by position. (FILTER
    with a lambda is neater but fakesnow cannot translate it on VARIANT.) Do not nest calls:
    extract the inner element into a column first, then search it. -#}
{% macro snowflake__json_array_find(expr, array_path, match_path, match_value, return_path) -%}
    (
        select min_by(
            {%- if return_path %} found.value:{{ return_path }}::varchar{% else %} found.value{% endif %},
            found.index
        )
        from lateral flatten(input => {{ expr }}:{{ array_path }}) as found
        where found.value:{{ match_path }}::varchar = '{{ match_value }}'
    )
{%- endmacro %}
