{#- Claim line facts. Grain: one row per Claim.item (a charge line of a claim), from
    stg_claims_transactions' CHARGE rows, with the claim's payer and provider. -#}

with

claim_lines as (

    select * from {{ ref('stg_claims_transactions') }}

),

claims as (

    select * from {{ ref('int_claims_enriched') }}

),

final as (

    select
        claim_lines.claim_transaction_id as claim_line_id,
        claim_lines.claim_id,
        cast(claim_lines.charge_id as integer) as line_number,
        claim_lines.patient_id,
        claim_lines.appointment_id as encounter_id,
        claim_lines.place_of_service as organization_id,
        claims.provider_id,
        claims.payer_id,
        claim_lines.item_kind,
        claim_lines.procedure_code,
        claim_lines.procedure_description,
        claim_lines.from_date_at,
        claim_lines.to_date_at,
        cast(claim_lines.from_date_at as date) as from_date,
        claim_lines.amount,
        claim_lines._loaded_at
    from claim_lines
    left join claims
        on claim_lines.claim_id = claims.claim_id

)

select * from final
