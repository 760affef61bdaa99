{#- Payer coverage facts. Grain: one row per run of a patient's consecutive claims billed to
    the same payer (stg_payer_transitions): what FHIR shows of a patient's insurance
    history, from the first to the last claim of the run. -#}

with

transitions as (

    select * from {{ ref('stg_payer_transitions') }}

),

final as (

    select
        payer_transition_key as payer_coverage_key,
        patient_id,
        payer_id,
        payer_name,
        cast(run_number as integer) as coverage_sequence,
        start_at,
        end_at,
        cast(start_at as date) as start_date,
        cast(end_at as date) as end_date,
        cast(cast(end_at as date) - cast(start_at as date) as integer) as coverage_days,
        cast(claim_count as integer) as claim_count,
        _loaded_at
    from transitions

)

select * from final
