{#- One row per claim with its references resolved: the rendering practitioner's id (from the
    NPI on the ExplanationOfBenefit), our payer id, the diagnosis codes in Synthea's order
    (the encounter's reason first, then the claim's diagnoses, else the encounter's type
    code; a medication claim repeats the codes of its encounter's claim) and the first item's net (Synthea 3.x newest: the base
    encounter cost). -#}

with

claims as (

    select * from {{ ref('stg_claims') }}

),

claim_items as (

    select * from {{ ref('stg_claims_transactions') }}

),

encounters as (

    select * from {{ ref('stg_encounters') }}

),

conditions as (

    select * from {{ ref('stg_conditions') }}

),

reference_map as (

    select * from {{ ref('int_reference_map') }}

),

diagnosis_references as (

    {% for i in range(1, 9) -%}
    select
        claim_id,
        {{ i }} as position,
        diagnosis_{{ i }}_condition_id as condition_id
    from claims
    where diagnosis_{{ i }}_condition_id is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

diagnosis_codes as (

    select
        claims.claim_id,
        0 as position,
        encounters.reason_code as code
    from claims
    inner join encounters
        on claims.encounter_id = encounters.encounter_id
    where
        claims.claim_kind = 'encounter'
        and encounters.reason_code is not null

    union all

    select
        diagnosis_references.claim_id,
        diagnosis_references.position,
        conditions.code
    from diagnosis_references
    inner join conditions
        on diagnosis_references.condition_id = conditions.condition_id

),

numbered_codes as (

    select
        claim_id,
        code,
        row_number() over (partition by claim_id order by position) as diagnosis_number
    from diagnosis_codes

),

encounter_claim_diagnoses as (

    select
        claim_id,
        {% for i in range(1, 9) -%}
        max(case when diagnosis_number = {{ i }} then code end) as diagnosis_{{ i }}
        {%- if not loop.last %},{% endif %}
        {% endfor %}
    from numbered_codes
    group by claim_id

),

encounter_claims as (

    select
        claims.encounter_id,
        claims.claim_id
    from claims
    where claims.claim_kind = 'encounter'
    qualify row_number() over (
        partition by claims.encounter_id order by claims.claim_id
    ) = 1

),

first_items as (

    select
        claim_id,
        amount as first_item_net
    from claim_items
    where charge_id = 1

),

final as (

    select
        claims.claim_id,
        claims.patient_id,
        claims.claim_kind,
        claims.claim_type,
        claims.encounter_id,
        claims.medication_request_id,
        claims.organization_id,
        providers.resource_id as provider_id,
        claims.provider_reference,
        {{ dbt.hash('claims.payer_name') }} as payer_id,
        claims.payer_name,
        claims.service_date_at,
        claims.service_end_at,
        claims.total,
        claims.submitted_total,
        claims.payment_amount,
        first_items.first_item_net,
        -- A claim with no reason and no diagnosis lists its encounter's type code (Synthea).
        coalesce(own.diagnosis_1, of_encounter.diagnosis_1, encounters.code) as diagnosis_1,
        {% for i in range(2, 9) -%}
        coalesce(own.diagnosis_{{ i }}, of_encounter.diagnosis_{{ i }}) as diagnosis_{{ i }},
        {% endfor -%}
        claims._loaded_at
    from claims
    left join reference_map as providers
        on claims.provider_reference = providers.reference
    left join first_items
        on claims.claim_id = first_items.claim_id
    left join encounter_claim_diagnoses as own
        on claims.claim_id = own.claim_id
    left join encounter_claims
        on
            claims.claim_kind = 'medication'
            and claims.encounter_id = encounter_claims.encounter_id
    left join encounter_claim_diagnoses as of_encounter
        on encounter_claims.claim_id = of_encounter.claim_id
    left join encounters
        on claims.encounter_id = encounters.encounter_id

)

select * from final
