{#- A select statement: `key` of each row of `relation` and, for each of `finds`, the first
    element (lowest position) of the JSON array at `array_path` in column `expr` whose
    `match_path` equals the find's `equals`: as text at the find's `returns` path, or the
    whole element as JSON (VARIANT) when `returns` is none, in the column named `column`.
    E.g. the SSN among a Patient's identifiers, or the race extension among its extensions.
    An empty `array_path` searches `expr` itself (an array already taken from its document).

    At most one row per key, and none on Snowflake for a row without the array: join the
    result to `relation` with a LEFT JOIN on `key` (which must be unique in `relation`).
    To search inside a found element, look it up again from this result. -#}
{% macro json_array_lookup(relation, key, expr, array_path, match_path, finds) -%}
    {{ return(adapter.dispatch('json_array_lookup', 'fhirflow')(
        relation, key, expr, array_path, match_path, finds)) }}
{%- endmacro %}

{#- DuckDB: list_filter over the array, per row, with no join or aggregate. -#}
{% macro duckdb__json_array_lookup(relation, key, expr, array_path, match_path, finds) -%}
    select
        {{ key }}
        {%- for find in finds %},
        {%- set element -%}
            list_filter(
                json_extract({{ expr }}, '${{ '.' ~ array_path if array_path }}[*]'),
                lambda x: json_extract_string(x, '$.{{ match_path }}') = '{{ find.equals }}'
            )[1]
        {%- endset %}
        {% if find.returns -%}
            json_extract_string({{ element }}, '$.{{ find.returns }}')
        {%- else -%}
            {{ element }}
        {%- endif %} as {{ find.column }}
        {%- endfor %}
    from {{ relation }}
{%- endmacro %}

{#- Snowflake: FLATTEN in the FROM clause and MIN_BY on the position of the matching
    elements (MIN_BY ignores the NULL positions of the others). Not a scalar subquery over
    FLATTEN in the select list: Snowflake rejects a correlation inside FLATTEN there. Not
    FLATTEN's OUTER => TRUE either: fakesnow ignores it, hence the LEFT JOIN contract. -#}
{% macro snowflake__json_array_lookup(relation, key, expr, array_path, match_path, finds) -%}
    select
        {{ relation }}.{{ key }}
        {%- for find in finds %},
        min_by(
            {% if find.returns -%}
                found.value:{{ find.returns }}::varchar
            {%- else -%}
                found.value
            {%- endif %},
            case when found.value:{{ match_path }}::varchar = '{{ find.equals }}' then found.index end
        ) as {{ find.column }}
        {%- endfor %}
    from {{ relation }},
        lateral flatten(input => {{ relation }}.{{ expr }}{{ ':' ~ array_path if array_path }}) as found
    group by {{ relation }}.{{ key }}
{%- endmacro %}

{% macro default__json_array_lookup(relation, key, expr, array_path, match_path, finds) -%}
    {{ raise_unsupported_adapter('json_array_lookup') }}
{%- endmacro %}
