{#- One row per Procedure. Synthea 3.x writes performedPeriod; the 2022 build wrote
    performedDateTime (its CSV had DATE only). -#}
{{ config(unique_key='procedure_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Procedure') }}

),

renamed as (

    select
        resource_id as procedure_id,
        {{ to_utc_timestamp("coalesce(" ~ json_text('resource', 'performedPeriod.start') ~ ", "
            ~ json_text('resource', 'performedDateTime') ~ ")") }} as start_at,
        {{ to_utc_timestamp(json_text('resource', 'performedPeriod.end')) }} as stop_at,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('resource', 'code.coding[0].system') }} as code_system,
        {{ json_text('resource', 'code.coding[0].code') }} as code,
        {{ json_text('resource', 'code.coding[0].display') }} as description,
        {{ reference_id(json_text('resource', 'reasonReference[0].reference')) }} as reason_condition_id,
        {{ json_text('resource', 'reasonCode[0].coding[0].code') }} as reason_code,
        {{ json_text('resource', 'reasonCode[0].coding[0].display') }} as reason_description,
        {{ reference_id(json_text('resource', 'location.reference')) }} as location_id,
        {{ json_text('resource', 'status') }} as status,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select
        *,
        {{ dbt.datediff(
            'start_at', 'stop_at', 'minute'
        ) }} as duration_minutes
    from renamed

)

select * from final
