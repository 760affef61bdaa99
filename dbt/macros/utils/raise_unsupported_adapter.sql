{#- The compile error of every cross-database macro's default__ body: the project only
    knows DuckDB and Snowflake, and a third adapter must fail at compile time, naming the
    macro to add, rather than run DuckDB's SQL somewhere it does not belong. -#}
{% macro raise_unsupported_adapter(macro_name) -%}
    {{ exceptions.raise_compiler_error(
        macro_name ~ " has no implementation for the '" ~ target.type ~ "' adapter: "
        ~ "fhirflow supports duckdb and snowflake (add " ~ target.type ~ "__" ~ macro_name
        ~ " to dbt/macros/cross_db/" ~ macro_name ~ ".sql)") }}
{%- endmacro %}
