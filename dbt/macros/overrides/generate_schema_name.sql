{#- Build into the layer's own schema (staging, intermediate, marts) rather than dbt's
    default "<target schema>_<custom schema>", so the names match the seed's layers. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
