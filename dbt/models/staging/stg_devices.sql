{{ config(unique_key='device_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Device') }}

),

renamed as (

    select
        resource_id as device_id,
        {{ reference_id(json_text('resource', 'patient.reference')) }} as patient_id,
        {{ json_text('resource', 'type.coding[0].code') }} as code,
        coalesce(
            {{ json_text('resource', 'type.coding[0].display') }},
            {{ json_text('resource', 'deviceName[0].name') }}
        ) as description,
        {{ json_text('resource', 'udiCarrier[0].carrierHRF') }} as udi,
        {{ to_utc_timestamp(json_text('resource', 'manufactureDate')) }} as manufactured_at,
        {{ to_utc_timestamp(json_text('resource', 'expirationDate')) }} as expires_at,
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
