{#- One row per Claim, with what its ExplanationOfBenefit (same bundle) adds: the rendering
    practitioner (the Claim's own provider is the Organization) and the submitted total. -#}
{{ config(unique_key='claim_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Claim') }}

),

eob_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'ExplanationOfBenefit') }}

),

submitted_totals as (

    {{ json_array_lookup('eob_source', 'resource_id', 'resource', 'total', 'category.coding[0].code', [
        {'equals': 'submitted', 'returns': 'amount.value', 'column': 'submitted_text'}
    ]) }}

),

explanation_fields as (

    select
        eob_source.resource_id,
        {{ reference_id(json_text('eob_source.resource', 'claim.reference')) }} as claim_id,
        coalesce(
            {{ json_text('eob_source.resource', 'provider.reference') }},
            {{ json_text('eob_source.resource', 'careTeam[0].provider.reference') }}
        ) as provider_reference,
        {{ json_text('eob_source.resource', 'insurer.display') }} as insurer_name,
        submitted_totals.submitted_text,
        {{ json_number('eob_source.resource', 'payment.amount.value') }} as payment_amount,
        eob_source._loaded_at
    from eob_source
    left join submitted_totals
        on eob_source.resource_id = submitted_totals.resource_id

),

-- One explanation per claim, chosen over the extracted fields (not the whole resource):
-- a window that carries each ExplanationOfBenefit's JSON does not fit a capped memory.
explanations as (

    select
        claim_id,
        provider_reference,
        insurer_name,
        submitted_text,
        payment_amount,
        _loaded_at
    from explanation_fields
    qualify row_number() over (
        partition by claim_id
        order by _loaded_at desc, resource_id desc
    ) = 1

),

renamed as (

    select
        resource_id as claim_id,
        {{ reference_id(json_text('resource', 'patient.reference')) }} as patient_id,
        {{ json_text('resource', 'type.coding[0].code') }} as claim_type,
        {{ reference_id(json_text('resource', 'provider.reference')) }} as organization_id,
        {{ json_text('resource', 'insurance[0].coverage.display') }} as coverage_name,
        {{ reference_id(json_text('resource', 'item[0].encounter[0].reference')) }} as encounter_id,
        {{ reference_id(json_text('resource', 'prescription.reference')) }} as medication_request_id,
        {{ to_utc_timestamp(json_text('resource', 'billablePeriod.start')) }} as service_date_at,
        {{ to_utc_timestamp(json_text('resource', 'billablePeriod.end')) }} as service_end_at,
        {{ json_number('resource', 'total.value') }} as total,
        {% for i in range(8) -%}
        {{ reference_id(json_text('resource', 'diagnosis[' ~ i ~ '].diagnosisReference.reference')) }}
            as diagnosis_{{ i + 1 }}_condition_id,
        {% endfor -%}
        {{ json_text('resource', 'status') }} as status,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select
        renamed.claim_id,
        renamed.patient_id,
        renamed.claim_type,
        case
            when renamed.medication_request_id is not null then 'medication'
            else 'encounter'
        end as claim_kind,
        renamed.organization_id,
        explanations.provider_reference,
        coalesce(renamed.coverage_name, explanations.insurer_name) as payer_name,
        renamed.encounter_id,
        renamed.medication_request_id,
        renamed.service_date_at,
        renamed.service_end_at,
        renamed.total,
        try_cast(explanations.submitted_text as double) as submitted_total,
        explanations.payment_amount,
        {% for i in range(8) -%}
        renamed.diagnosis_{{ i + 1 }}_condition_id,
        {% endfor -%}
        renamed.status,
        renamed._object_key,
        renamed._load_id,
        renamed._loaded_at
    from renamed
    left join explanations
        on renamed.claim_id = explanations.claim_id

)

select * from final
