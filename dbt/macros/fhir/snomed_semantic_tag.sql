{#- Plain SQL that DuckDB and Snowflake both run, so not dispatched.
    The semantic tag of a SNOMED CT fully specified name: the text in the last parentheses
    at the end of the display ('Viral sinusitis (disorder)' -> 'disorder',
    'Severe anxiety (panic) (finding)' -> 'finding'); null when the display has no tag, as
    some of Synthea's displays ('Prediabetes'). Reversed, the tag is the first part before
    a '(': string functions rather than a regular expression (the warehouses escape
    backslashes in literals differently), and no POSITION or RTRIM(x, chars), which
    fakesnow mistranslates inside the CREATE TABLE ... AS of a clustered, contracted mart. -#}
{% macro snomed_semantic_tag(text_expr) -%}
    case
        when rtrim({{ text_expr }}) like '%(%)'
            then nullif(lower(reverse(substr(split_part(reverse(rtrim({{ text_expr }})), '(', 1), 2))), '')
    end
{%- endmacro %}
