{#- The JSON (VARIANT on Snowflake) at `path` out of `texts`, the column that
    `json_texts(expr, paths)` made with the same `paths`: an array or object among the
    scalars, for flattening or a lookup, without parsing the whole document again. -#}
{% macro json_texts_value(texts, paths, path) -%}
    {{ return(adapter.dispatch('json_texts_value', 'fhirflow')(texts, paths, path)) }}
{%- endmacro %}

{#- DuckDB: json_extract_string gives an object or array as its JSON text; cast back. -#}
{% macro duckdb__json_texts_value(texts, paths, path) -%}
    cast({{ duckdb__json_texts_at(texts, paths, path) }} as json)
{%- endmacro %}

{% macro snowflake__json_texts_value(texts, paths, path) -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error("json_texts_value: '" ~ path ~ "' is not among the paths of json_texts") }}
    {%- endif -%}
    {{ texts }}:{{ path }}
{%- endmacro %}

{% macro default__json_texts_value(texts, paths, path) -%}
    {{ raise_unsupported_adapter('json_texts_value') }}
{%- endmacro %}
