{#- What the encounter's claim billed for each code: Synthea bills each procedure and
    immunization of an encounter as one item of the encounter's claim, with the item's net
    as the event's base cost. When an encounter bills the same code twice, the first
    item's net stands for both. -#}

with

claims as (

    select * from {{ ref('int_claims_enriched') }}

),

claim_items as (

    select * from {{ ref('stg_claims_transactions') }}

),

encounter_claim_items as (

    select
        claims.encounter_id,
        claim_items.procedure_code as code,
        claim_items.amount,
        claim_items.charge_id
    from claim_items
    inner join claims
        on claim_items.claim_id = claims.claim_id
    where
        claims.claim_kind = 'encounter'
        and claim_items.amount is not null

),

final as (

    select
        encounter_id,
        code,
        amount
    from encounter_claim_items
    qualify row_number() over (
        partition by encounter_id, code
        order by charge_id
    ) = 1

)

select * from final
