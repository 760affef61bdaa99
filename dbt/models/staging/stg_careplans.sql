{{ config(unique_key='careplan_id') }}

with

source as (

    {{ resources_of_type('CarePlan') }}

),

renamed as (

    select
        resource_id as careplan_id,
        {{ local_date(json_text('resource', 'period.start')) }} as start_date,
        {{ local_date(json_text('resource', 'period.end')) }} as stop_date,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        -- category[0] is US Core's assess-plan; the SNOMED category is the care plan itself.
        {{ json_array_find('resource', 'category', 'coding[0].system', 'http://snomed.info/sct',
            'coding[0].code') }} as code,
        {{ json_array_find('resource', 'category', 'coding[0].system', 'http://snomed.info/sct',
            'coding[0].display') }} as description,
        {{ reference_id(json_text('resource', 'addresses[0].reference')) }} as reason_condition_id,
        {{ json_text('resource', 'status') }} as status,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
