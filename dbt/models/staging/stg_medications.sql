{#- One row per MedicationRequest. The medication is either inline
    (medicationCodeableConcept) or a reference to a Medication resource in the same bundle
    (medicationReference, Synthea 3.x for hospital-administered drugs). -#}
{{ config(unique_key='medication_request_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'MedicationRequest') }}

),

medication_resources as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Medication') }}

),

medication_codes as (

    select
        resource_id as medication_id,
        {{ json_text('resource', 'code.coding[0].code') }} as code,
        {{ json_text('resource', 'code.coding[0].display') }} as description
    from medication_resources

),

renamed as (

    select
        resource_id as medication_request_id,
        {{ to_utc_timestamp(json_text('resource', 'authoredOn')) }} as start_at,
        {{ json_text('resource', 'status') }} as status,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('resource', 'medicationCodeableConcept.coding[0].code') }} as inline_code,
        {{ json_text('resource', 'medicationCodeableConcept.coding[0].display') }} as inline_description,
        {{ reference_id(json_text('resource', 'medicationReference.reference')) }} as medication_id,
        {{ reference_id(json_text('resource', 'reasonReference[0].reference')) }} as reason_condition_id,
        {{ json_text('resource', 'reasonCode[0].coding[0].code') }} as reason_code,
        {{ json_text('resource', 'reasonCode[0].coding[0].display') }} as reason_description,
        {{ json_text('resource', 'category[0].coding[0].code') }} as category,
        {{ json_text('resource', 'requester.reference') }} as requester_reference,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select
        renamed.medication_request_id,
        renamed.start_at,
        renamed.status,
        -- Synthea sets STOP exactly when the prescription is no longer active; FHIR keeps
        -- only the status, not the date.
        renamed.status in ('completed', 'stopped') as is_stopped,
        renamed.patient_id,
        renamed.encounter_id,
        coalesce(renamed.inline_code, medication_codes.code) as code,
        coalesce(renamed.inline_description, medication_codes.description) as description,
        case
            when renamed.inline_code is not null then 'codeable_concept'
            when renamed.medication_id is not null then 'reference'
        end as medication_form,
        renamed.medication_id,
        renamed.reason_condition_id,
        renamed.reason_code,
        renamed.reason_description,
        renamed.category,
        renamed.requester_reference,
        renamed._object_key,
        renamed._load_id,
        renamed._loaded_at
    from renamed
    left join medication_codes
        on renamed.medication_id = medication_codes.medication_id

)

select * from final
