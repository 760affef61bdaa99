{#- One row per observation value, as Synthea's observations.csv: an Observation with
    components (blood pressure, surveys) yields one row per component and none for itself. -#}
{{ config(unique_key='observation_key') }}

with

entries as (

    select * from {{ ref('base_fhir_entries') }}

),

source as (

    {{ resources_of_type('entries', 'Observation') }}

),

observations as (

    select
        resource_id as observation_id,
        resource,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

components as (

    {{ flatten_json_array(
        'observations',
        json_value('resource', 'component'),
        ['observation_id', 'resource', '_object_key', '_load_id', '_loaded_at']
    ) }}

),

observation_values as (

    select
        observation_id,
        -1 as component_index,
        resource as value_source,
        resource,
        _object_key,
        _load_id,
        _loaded_at
    from observations
    where {{ json_value('resource', 'component') }} is null

    union all

    select
        observation_id,
        index as component_index,
        value as value_source,
        resource,
        _object_key,
        _load_id,
        _loaded_at
    from components

),

renamed as (

    select
        observation_id || '#' || cast(component_index as varchar) as observation_key,
        observation_id,
        component_index,
        {{ to_utc_timestamp("coalesce(" ~ json_text('resource', 'effectiveDateTime') ~ ", "
            ~ json_text('resource', 'effectivePeriod.start') ~ ", "
            ~ json_text('resource', 'issued') ~ ")") }} as date_at,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('resource', 'category[0].coding[0].code') }} as category,
        {{ json_text('value_source', 'code.coding[0].code') }} as code,
        {{ json_text('value_source', 'code.coding[0].display') }} as description,
        {{ json_number('value_source', 'valueQuantity.value') }} as value_number,
        coalesce(
            {{ json_text('value_source', 'valueCodeableConcept.coding[0].display') }},
            {{ json_text('value_source', 'valueCodeableConcept.text') }},
            {{ json_text('value_source', 'valueString') }},
            {{ json_text('value_source', 'valueBoolean') }}
        ) as value_text,
        {{ json_text('value_source', 'valueQuantity.unit') }} as units,
        {{ json_text('resource', 'status') }} as status,
        _object_key,
        _load_id,
        _loaded_at
    from observation_values

),

final as (

    select
        observation_key,
        observation_id,
        component_index,
        date_at,
        patient_id,
        encounter_id,
        category,
        code,
        description,
        value_number,
        units,
        status,
        _object_key,
        _load_id,
        _loaded_at,
        case when value_number is null then value_text end as value_text,
        case when value_number is not null then 'numeric' else 'text' end as value_type
    from renamed

)

select * from final
