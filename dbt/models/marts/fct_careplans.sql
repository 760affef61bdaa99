{#- Care plan facts. Grain: one row per CarePlan, with the condition it addresses. -#}

with

careplans as (

    select * from {{ ref('stg_careplans') }}

),

conditions as (

    select * from {{ ref('stg_conditions') }}

),

final as (

    select
        careplans.careplan_id,
        careplans.patient_id,
        careplans.encounter_id,
        careplans.code,
        careplans.description,
        careplans.reason_condition_id,
        conditions.code as reason_code,
        conditions.description as reason_description,
        careplans.status,
        careplans.status = 'active' as is_active,
        careplans.start_date,
        careplans.stop_date,
        cast(careplans.stop_date - careplans.start_date as integer) as duration_days,
        careplans._loaded_at
    from careplans
    left join conditions
        on careplans.reason_condition_id = conditions.condition_id

)

select * from final
