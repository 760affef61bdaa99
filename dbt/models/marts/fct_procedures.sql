{#- Procedure facts. Grain: one row per Procedure. Cost: the net of the encounter claim's
    item for the same code (Synthea bills each procedure as one item). -#}

with

procedures as (

    select * from {{ ref('stg_procedures') }}

),

reasons as (

    select * from {{ ref('int_procedure_reasons') }}

),

item_costs as (

    select * from {{ ref('int_encounter_item_costs') }}

),

final as (

    select
        procedures.procedure_id,
        procedures.patient_id,
        procedures.encounter_id,
        procedures.code_system,
        procedures.code,
        procedures.description,
        procedures.start_at,
        procedures.stop_at,
        cast(procedures.start_at as date) as start_date,
        procedures.duration_minutes,
        item_costs.amount as base_cost,
        reasons.reason_code,
        reasons.reason_description,
        procedures._loaded_at
    from procedures
    left join reasons
        on procedures.procedure_id = reasons.procedure_id
    left join item_costs
        on
            procedures.encounter_id = item_costs.encounter_id
            and procedures.code = item_costs.code

)

select * from final
