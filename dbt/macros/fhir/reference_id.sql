{#- Plain SQL that DuckDB and Snowflake both run, so not dispatched.
    The id a FHIR reference points at, for the forms Synthea writes:
    'urn:uuid:<id>' -> <id>; 'Type/<id>' -> <id>;
    'Type?identifier=<system>|<value>' -> <value> (a uuid for Organization and Location,
    an NPI for Practitioner: resolve those with int_reference_map). -#}
{% macro reference_id(text_expr) -%}
    case
        when {{ text_expr }} like 'urn:uuid:%' then substr({{ text_expr }}, 10)
        when {{ text_expr }} like '%?identifier=%|%' then split_part({{ text_expr }}, '|', 2)
        when {{ text_expr }} like '%/%' then split_part({{ text_expr }}, '/', 2)
        else {{ text_expr }}
    end
{%- endmacro %}
