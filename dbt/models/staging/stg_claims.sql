{#- One row per Claim, with what its ExplanationOfBenefit (same bundle) adds: the rendering
    practitioner (the Claim's own provider is the Organization) and the submitted total. -#}
{{ config(unique_key='claim_id') }}

{%- set claim_paths = ['patient.reference', 'type.coding[0].code', 'provider.reference',
                       'insurance[0].coverage.display', 'item[0].encounter[0].reference',
                       'prescription.reference', 'billablePeriod.start', 'billablePeriod.end',
                       'total.value', 'status'] %}
{%- for i in range(8) %}
{%- do claim_paths.append('diagnosis[' ~ i ~ '].diagnosisReference.reference') %}
{%- endfor %}
{%- set eob_paths = ['claim.reference', 'provider.reference', 'careTeam[0].provider.reference',
                     'insurer.display', 'payment.amount.value', 'total'] %}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Claim') }}

),

eob_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'ExplanationOfBenefit') }}

),

-- Each ExplanationOfBenefit's fields and its totals in one parse (the totals are the only
-- part read again, by the lookup below), computed once for the two steps that read them,
-- so the whole JSON is neither carried further nor held.
eob_texts as {{ materialized_cte() }} (

    select
        resource_id,
        {{ json_texts('resource', eob_paths) }} as texts,
        {{ json_texts_value(json_texts('resource', eob_paths), eob_paths, 'total') }} as totals,
        _loaded_at
    from eob_source

),

submitted_totals as (

    {{ json_array_lookup('eob_texts', 'resource_id', 'totals', '', 'category.coding[0].code', [
        {'equals': 'submitted', 'returns': 'amount.value', 'column': 'submitted_text'}
    ]) }}

),

explanation_fields as (

    select
        eob_texts.resource_id,
        {{ reference_id(json_texts_at('eob_texts.texts', eob_paths, 'claim.reference')) }} as claim_id,
        coalesce(
            {{ json_texts_at('eob_texts.texts', eob_paths, 'provider.reference') }},
            {{ json_texts_at('eob_texts.texts', eob_paths, 'careTeam[0].provider.reference') }}
        ) as provider_reference,
        {{ json_texts_at('eob_texts.texts', eob_paths, 'insurer.display') }} as insurer_name,
        submitted_totals.submitted_text,
        try_cast({{ json_texts_at('eob_texts.texts', eob_paths, 'payment.amount.value') }} as double)
            as payment_amount,
        eob_texts._loaded_at
    from eob_texts
    left join submitted_totals
        on eob_texts.resource_id = submitted_totals.resource_id

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

claim_texts as (

    select
        resource_id,
        {{ json_texts('resource', claim_paths) }} as texts,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

renamed as (

    select
        resource_id as claim_id,
        {{ reference_id(json_texts_at('texts', claim_paths, 'patient.reference')) }} as patient_id,
        {{ json_texts_at('texts', claim_paths, 'type.coding[0].code') }} as claim_type,
        {{ reference_id(json_texts_at('texts', claim_paths, 'provider.reference')) }} as organization_id,
        {{ json_texts_at('texts', claim_paths, 'insurance[0].coverage.display') }} as coverage_name,
        {{ reference_id(json_texts_at('texts', claim_paths, 'item[0].encounter[0].reference')) }}
            as encounter_id,
        {{ reference_id(json_texts_at('texts', claim_paths, 'prescription.reference')) }}
            as medication_request_id,
        {{ to_utc_timestamp(json_texts_at('texts', claim_paths, 'billablePeriod.start')) }}
            as service_date_at,
        {{ to_utc_timestamp(json_texts_at('texts', claim_paths, 'billablePeriod.end')) }} as service_end_at,
        try_cast({{ json_texts_at('texts', claim_paths, 'total.value') }} as double) as total,
        {% for i in range(8) -%}
        {{ reference_id(json_texts_at('texts', claim_paths,
                                      'diagnosis[' ~ i ~ '].diagnosisReference.reference')) }}
            as diagnosis_{{ i + 1 }}_condition_id,
        {% endfor -%}
        {{ json_texts_at('texts', claim_paths, 'status') }} as status,
        _object_key,
        _load_id,
        _loaded_at
    from claim_texts

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
