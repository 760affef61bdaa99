{{ config(unique_key='immunization_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Immunization') }}

),

renamed as (

    select
        resource_id as immunization_id,
        {{ to_utc_timestamp(json_text('resource', 'occurrenceDateTime')) }} as date_at,
        {{ reference_id(json_text('resource', 'patient.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('resource', 'vaccineCode.coding[0].code') }} as code,
        {{ json_text('resource', 'vaccineCode.coding[0].display') }} as description,
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
