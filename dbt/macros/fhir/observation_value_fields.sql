{#- Plain SQL over the json_* dispatch macros, so not dispatched itself.
    The value columns of an Observation or of one of its components (`expr` is the JSON of
    either): code, description, value_number, value_text, units, as select-list items. -#}
{% macro observation_value_fields(expr) -%}
        {{ json_text(expr, 'code.coding[0].code') }} as code,
        {{ json_text(expr, 'code.coding[0].display') }} as description,
        {{ json_number(expr, 'valueQuantity.value') }} as value_number,
        coalesce(
            {{ json_text(expr, 'valueCodeableConcept.coding[0].display') }},
            {{ json_text(expr, 'valueCodeableConcept.text') }},
            {{ json_text(expr, 'valueString') }},
            {{ json_text(expr, 'valueBoolean') }}
        ) as value_text,
        {{ json_text(expr, 'valueQuantity.unit') }} as units
{%- endmacro %}
