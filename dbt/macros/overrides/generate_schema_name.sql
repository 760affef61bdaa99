{#- Build into the layer's own schema (staging, intermediate, marts) rather than dbt's
    default "<target schema>_<custom schema>", so the names match the seed's layers.
    FHIRFLOW_DBT_SCHEMA_PREFIX (empty unless set; exported on Snowflake from Settings) goes in
    front of each: a developer's own schemas, or the scratch ones `fhirflow doctor` builds a
    few models in and drops afterwards. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ env_var('FHIRFLOW_DBT_SCHEMA_PREFIX', '') }}{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
