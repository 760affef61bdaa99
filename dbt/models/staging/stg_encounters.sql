{{ config(unique_key='encounter_id') }}

with

encounter_classes as (

    select * from {{ ref('encounter_classes') }}

),

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Encounter') }}

),

renamed as (

    select
        resource_id as encounter_id,
        {{ to_utc_timestamp(json_text('resource', 'period.start')) }} as start_at,
        {{ to_utc_timestamp(json_text('resource', 'period.end')) }} as stop_at,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'serviceProvider.reference')) }} as organization_id,
        {{ reference_id(json_text('resource', 'participant[0].individual.reference')) }} as provider_npi,
        {{ json_text('resource', 'participant[0].individual.reference') }} as provider_reference,
        {{ reference_id(json_text('resource', 'location[0].location.reference')) }} as location_id,
        {{ json_text('resource', 'class.code') }} as encounter_class_code,
        {{ json_text('resource', 'type[0].coding[0].code') }} as code,
        {{ json_text('resource', 'type[0].coding[0].display') }} as description,
        {{ json_text('resource', 'reasonCode[0].coding[0].code') }} as reason_code,
        {{ json_text('resource', 'reasonCode[0].coding[0].display') }} as reason_description,
        {{ json_text('resource', 'status') }} as status,
        {{ json_text('resource', 'hospitalization.dischargeDisposition.coding[0].code') }}
            as discharge_disposition_code,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select
        encounter_id,
        start_at,
        stop_at,
        patient_id,
        organization_id,
        provider_npi,
        provider_reference,
        location_id,
        encounter_class_code,
        -- FHIR's v3 ActCode class is coarser than Synthea's own encounter class (wellness,
        -- ambulatory, outpatient and urgent care all become AMB): the encounter types that
        -- only one Synthea class uses refine it (seed encounter_classes), the rest fall back
        -- to the class's usual meaning.
        coalesce(
            encounter_classes.encounter_class,
            case encounter_class_code
                when 'AMB' then 'ambulatory'
                when 'EMER' then 'emergency'
                when 'IMP' then 'inpatient'
                when 'VR' then 'virtual'
                when 'HH' then 'home'
                else lower(encounter_class_code)
            end
        ) as encounter_class,
        code,
        description,
        reason_code,
        reason_description,
        status,
        discharge_disposition_code,
        {{ dbt.datediff(
            'start_at', 'stop_at', 'minute'
        ) }} as duration_minutes,
        _object_key,
        _load_id,
        _loaded_at
    from renamed
    left join encounter_classes
        on
            renamed.encounter_class_code = encounter_classes.class_code
            and renamed.code = encounter_classes.type_code

)

select * from final
