{#- Claim facts. Grain: one row per Claim (an encounter's claim, or a prescription's
    pharmacy claim), with its ExplanationOfBenefit's amounts and its number of lines. -#}

with

claims as (

    select * from {{ ref('int_claims_enriched') }}

),

claim_lines as (

    select * from {{ ref('stg_claims_transactions') }}

),

line_counts as (

    select
        claim_id,
        count(*) as line_count
    from claim_lines
    group by claim_id

),

final as (

    select
        claims.claim_id,
        claims.patient_id,
        claims.encounter_id,
        claims.medication_request_id,
        claims.claim_kind,
        claims.claim_type,
        claims.organization_id,
        claims.provider_id,
        claims.payer_id,
        claims.service_date_at,
        claims.service_end_at,
        cast(claims.service_date_at as date) as service_date,
        claims.diagnosis_1 as primary_diagnosis_code,
        cast(coalesce(line_counts.line_count, 0) as integer) as line_count,
        claims.total as claim_total,
        claims.submitted_total,
        claims.payment_amount as eob_payment,
        claims._loaded_at
    from claims
    left join line_counts
        on claims.claim_id = line_counts.claim_id

)

select * from final
