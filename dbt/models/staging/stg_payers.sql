{#- The payers FHIR names: Synthea writes no payer resource, only the payer's name as
    display text on Claim.insurance[0].coverage and ExplanationOfBenefit.insurer. Synthea's
    payer Ids and every other payers.csv column are CSV-only; payer_id here is our own
    deterministic surrogate (md5 of the name). -#}
{{ config(unique_key='payer_id') }}

with

claim_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Claim') }}

),

eob_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'ExplanationOfBenefit') }}

),

names as (

    select
        {{ json_text('resource', 'insurance[0].coverage.display') }} as payer_name,
        _object_key,
        _load_id,
        _loaded_at
    from claim_source

    union all

    select
        {{ json_text('resource', 'insurer.display') }} as payer_name,
        _object_key,
        _load_id,
        _loaded_at
    from eob_source

),

deduplicated as (

    select *
    from names
    where payer_name is not null
    qualify row_number() over (
        partition by payer_name
        order by _loaded_at desc, _object_key desc
    ) = 1

),

final as (

    select
        {{ dbt.hash('payer_name') }} as payer_id,
        payer_name as name,
        payer_name = 'NO_INSURANCE' as is_no_insurance,
        _object_key,
        _load_id,
        _loaded_at
    from deduplicated

)

select * from final
