{#- One row per observation value, as Synthea's observations.csv: an Observation with
    components (blood pressure, surveys) yields one row per component and none for itself. -#}
{{ config(
    unique_key='observation_key',
    pre_hook="{{ delete_reread_resources('Observation', 'observation_id') }}"
) }}

{%- set paths = ['effectiveDateTime', 'effectivePeriod.start', 'issued', 'subject.reference',
                 'encounter.reference', 'category[0].coding[0].code', 'status']
                + observation_value_paths() %}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Observation') }}

),

-- Every scalar taken from the resource in one parse (json_texts), and the component list,
-- so what follows carries narrow columns, not each Observation's whole JSON (which does not
-- fit a capped memory at scale once the CTE is read twice).
observation_texts as (

    select
        resource_id as observation_id,
        {{ json_texts('resource', paths) }} as texts,
        {{ json_value('resource', 'component') }} as components,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

observations as {{ materialized_cte() }} (

    select
        observation_id,
        {{ to_utc_timestamp("coalesce(" ~ json_texts_at('texts', paths, 'effectiveDateTime') ~ ", "
            ~ json_texts_at('texts', paths, 'effectivePeriod.start') ~ ", "
            ~ json_texts_at('texts', paths, 'issued') ~ ")") }} as date_at,
        {{ reference_id(json_texts_at('texts', paths, 'subject.reference')) }} as patient_id,
        {{ reference_id(json_texts_at('texts', paths, 'encounter.reference')) }} as encounter_id,
        {{ json_texts_at('texts', paths, 'category[0].coding[0].code') }} as category,
        {{ json_texts_at('texts', paths, 'status') }} as status,
        components,
        {{ observation_value_fields('texts', paths) }},
        _object_key,
        _load_id,
        _loaded_at
    from observation_texts

),

components as (

    {{ flatten_json_array(
        'observations',
        'components',
        ['observation_id', 'date_at', 'patient_id', 'encounter_id', 'category', 'status',
         '_object_key', '_load_id', '_loaded_at']
    ) }}

),

component_texts as (

    select
        observation_id,
        index,
        date_at,
        patient_id,
        encounter_id,
        category,
        status,
        {{ json_texts('value', observation_value_paths()) }} as texts,
        _object_key,
        _load_id,
        _loaded_at
    from components

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
        {{ observation_value_fields('texts', observation_value_paths()) }},
        status,
        _object_key,
        _load_id,
        _loaded_at
    from component_texts

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
