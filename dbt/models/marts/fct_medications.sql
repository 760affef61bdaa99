{#- Prescription facts. Grain: one row per MedicationRequest. Cost from its pharmacy claim,
    reason resolved through the Condition it references. -#}

with

medications as (

    select * from {{ ref('stg_medications') }}

),

reasons as (

    select * from {{ ref('int_medication_reasons') }}

),

claims as (

    select * from {{ ref('int_claims_enriched') }}
    where claim_kind = 'medication'
    qualify row_number() over (partition by medication_request_id order by claim_id) = 1

),

final as (

    select
        medications.medication_request_id,
        medications.patient_id,
        medications.encounter_id,
        claims.claim_id,
        claims.payer_id,
        claims.payer_name,
        medications.code,
        medications.description,
        medications.medication_form,
        medications.status,
        medications.is_stopped,
        medications.start_at,
        cast(medications.start_at as date) as start_date,
        claims.total as base_cost,
        reasons.reason_code,
        reasons.reason_description,
        medications._loaded_at
    from medications
    left join reasons
        on medications.medication_request_id = reasons.medication_request_id
    left join claims
        on medications.medication_request_id = claims.medication_request_id

)

select * from final
