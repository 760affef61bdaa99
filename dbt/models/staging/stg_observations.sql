{#- One row per observation value, as Synthea's observations.csv: an Observation with
    components (blood pressure, surveys) yields one row per component and none for itself. -#}
{{ config(unique_key='observation_key') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Observation') }}

),

-- Everything taken from the resource in one step, so what follows carries narrow columns
-- and the component list, not each Observation's whole JSON (which does not fit a capped
-- memory at scale once the CTE is read twice).
observations as (

    select
        resource_id as observation_id,
        {{ to_utc_timestamp("coalesce(" ~ json_text('resource', 'effectiveDateTime') ~ ", "
            ~ json_text('resource', 'effectivePeriod.start') ~ ", "
            ~ json_text('resource', 'issued') ~ ")") }} as date_at,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('resource', 'category[0].coding[0].code') }} as category,
        {{ json_text('resource', 'status') }} as status,
        {{ json_value('resource', 'component') }} as components,
        {{ observation_value_fields('resource') }},
        _object_key,
        _load_id,
        _loaded_at
    from source

),

components as (

    {{ flatten_json_array(
        'observations',
        'components',
        ['observation_id', 'date_at', 'patient_id', 'encounter_id', 'category', 'status',
         '_object_key', '_load_id', '_loaded_at']
    ) }}

),

renamed as (

    select
        observation_id || '#-1' as observation_key,
        observation_id,
        -1 as component_index,
        date_at,
        patient_id,
        encounter_id,
        category,
        code,
        description,
        value_number,
        value_text,
        units,
        status,
        _object_key,
        _load_id,
        _loaded_at
    from observations
    where components is null

    union all

    select
        observation_id || '#' || cast(index as varchar) as observation_key,
        observation_id,
        index as component_index,
        date_at,
        patient_id,
        encounter_id,
        category,
        {{ observation_value_fields('value') }},
        status,
        _object_key,
        _load_id,
        _loaded_at
    from components

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
