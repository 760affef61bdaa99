{#- Encounter facts. Grain: one row per encounter. Costs from the encounter's claim and its
    ExplanationOfBenefit; practitioner resolved from its NPI. -#}

with

encounters as (

    select * from {{ ref('stg_encounters') }}

),

claims as (

    select * from {{ ref('int_claims_enriched') }}
    where claim_kind = 'encounter'
    qualify row_number() over (partition by encounter_id order by claim_id) = 1

),

reference_map as (

    select * from {{ ref('int_reference_map') }}

),

final as (

    select
        encounters.encounter_id,
        encounters.patient_id,
        encounters.organization_id,
        providers.resource_id as provider_id,
        claims.claim_id,
        claims.payer_id,
        claims.payer_name,
        encounters.encounter_class,
        encounters.encounter_class_code,
        encounters.code,
        encounters.description,
        encounters.reason_code,
        encounters.reason_description,
        encounters.start_at,
        encounters.stop_at,
        cast(encounters.start_at as date) as start_date,
        encounters.duration_minutes,
        claims.first_item_net as base_encounter_cost,
        claims.payment_amount as eob_payment,
        encounters._loaded_at,
        coalesce(claims.submitted_total, claims.total) as total_claim_cost
    from encounters
    left join claims
        on encounters.encounter_id = claims.encounter_id
    left join reference_map as providers
        on encounters.provider_reference = providers.reference

)

select * from final
