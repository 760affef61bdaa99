{#- Plain SQL over the json_* dispatch macros, so not dispatched itself.
    The value columns of an Observation or of one of its components: code, description,
    value_number, value_text, units, as select-list items, from `texts`, the column that
    `json_texts(<the JSON of either>, paths)` made, where `paths` includes
    `observation_value_paths()`. -#}
{% macro observation_value_fields(texts, paths) -%}
        {{ json_texts_at(texts, paths, 'code.coding[0].code') }} as code,
        {{ json_texts_at(texts, paths, 'code.coding[0].display') }} as description,
        try_cast({{ json_texts_at(texts, paths, 'valueQuantity.value') }} as double) as value_number,
        coalesce(
            {{ json_texts_at(texts, paths, 'valueCodeableConcept.coding[0].display') }},
            {{ json_texts_at(texts, paths, 'valueCodeableConcept.text') }},
            {{ json_texts_at(texts, paths, 'valueString') }},
            {{ json_texts_at(texts, paths, 'valueBoolean') }}
        ) as value_text,
        {{ json_texts_at(texts, paths, 'valueQuantity.unit') }} as units
{%- endmacro %}

{#- The JSON paths `observation_value_fields` reads. -#}
{% macro observation_value_paths() -%}
    {{ return(['code.coding[0].code', 'code.coding[0].display', 'valueQuantity.value',
               'valueCodeableConcept.coding[0].display', 'valueCodeableConcept.text',
               'valueString', 'valueBoolean', 'valueQuantity.unit']) }}
{%- endmacro %}
