{#- The text at `path` out of `texts`, the column that `json_texts(expr, paths)` made with
    the same `paths` (which must list `path`). -#}
{% macro json_texts_at(texts, paths, path) -%}
    {{ return(adapter.dispatch('json_texts_at', 'fhirflow')(texts, paths, path)) }}
{%- endmacro %}

{#- DuckDB: the list's element (lists are 1-based). -#}
{% macro duckdb__json_texts_at(texts, paths, path) -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error("json_texts_at: '" ~ path ~ "' is not among the paths of json_texts") }}
    {%- endif -%}
    {{ texts }}[{{ paths.index(path) + 1 }}]
{%- endmacro %}

{#- Snowflake: `texts` is the document; the path read from it. -#}
{% macro snowflake__json_texts_at(texts, paths, path) -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error("json_texts_at: '" ~ path ~ "' is not among the paths of json_texts") }}
    {%- endif -%}
    {{ texts }}:{{ path }}::varchar
{%- endmacro %}

{% macro default__json_texts_at(texts, paths, path) -%}
    {{ raise_unsupported_adapter('json_texts_at') }}
{%- endmacro %}
