{#- What FHIR holds of Synthea's claims_transactions.csv: the charges. One CHARGE row per
    Claim.item with its net amount. Payments, adjustments and transfers are Synthea's CSV-only
    billing simulation and have no FHIR source. -#}
{{ config(
    unique_key='claim_transaction_id',
    pre_hook="{{ delete_reread_resources('Claim', 'claim_id') }}"
) }}

{%- set claim_paths = ['patient.reference', 'billablePeriod.start', 'billablePeriod.end',
                       'provider.reference', 'item[0].encounter[0].reference'] %}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Claim') }}

),

-- The Claim's own fields in one parse, and its items: each item row then carries those
-- few texts, not the whole Claim.
claims as (

    select
        resource_id as claim_id,
        {{ json_texts('resource', claim_paths) }} as texts,
        {{ json_value('resource', 'item') }} as claim_items,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

items as (

    {{ flatten_json_array(
        'claims',
        'claim_items',
        ['claim_id', 'texts', '_object_key', '_load_id', '_loaded_at']
    ) }}

),

renamed as (

    select
        claim_id || '#' || cast(index + 1 as varchar) as claim_transaction_id,
        claim_id,
        coalesce(cast({{ json_number('value', 'sequence') }} as integer), index + 1) as charge_id,
        {{ reference_id(json_texts_at('texts', claim_paths, 'patient.reference')) }} as patient_id,
        'CHARGE' as transaction_type,
        {{ json_number('value', 'net.value') }} as amount,
        {{ to_utc_timestamp(json_texts_at('texts', claim_paths, 'billablePeriod.start')) }} as from_date_at,
        {{ to_utc_timestamp(json_texts_at('texts', claim_paths, 'billablePeriod.end')) }} as to_date_at,
        {{ reference_id(json_texts_at('texts', claim_paths, 'provider.reference')) }} as place_of_service,
        {{ json_text('value', 'productOrService.coding[0].code') }} as procedure_code,
        {{ json_text('value', 'productOrService.coding[0].display') }} as procedure_description,
        {{ reference_id(json_texts_at('texts', claim_paths, 'item[0].encounter[0].reference')) }} as appointment_id,
        case
            when {{ json_value('value', 'encounter') }} is not null then 'encounter'
            when {{ json_value('value', 'procedureSequence') }} is not null then 'procedure'
            when {{ json_value('value', 'informationSequence') }} is not null then 'information'
            when {{ json_value('value', 'diagnosisSequence') }} is not null then 'diagnosis'
            else 'other'
        end as item_kind,
        _object_key,
        _load_id,
        _loaded_at
    from items

),

final as (

    select * from renamed

)

select * from final
