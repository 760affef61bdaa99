{{ config(unique_key='condition_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Condition') }}

),

renamed as (

    select
        resource_id as condition_id,
        {{ local_date(json_text('resource', 'onsetDateTime')) }} as start_date,
        {{ local_date(json_text('resource', 'abatementDateTime')) }} as stop_date,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('resource', 'code.coding[0].system') }} as code_system,
        {{ json_text('resource', 'code.coding[0].code') }} as code,
        {{ json_text('resource', 'code.coding[0].display') }} as description,
        {{ json_text('resource', 'clinicalStatus.coding[0].code') }} as clinical_status,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
