{#- The reason of each procedure as Synthea's procedures.csv gives it: the code of the
    Condition that reasonReference points to, else the procedure's own reasonCode. -#}

with

procedures as (

    select * from {{ ref('stg_procedures') }}

),

conditions as (

    select * from {{ ref('stg_conditions') }}

),

final as (

    select
        procedures.procedure_id,
        procedures.patient_id,
        procedures.reason_condition_id,
        coalesce(conditions.code, procedures.reason_code) as reason_code,
        coalesce(conditions.description, procedures.reason_description) as reason_description,
        case
            when conditions.code is not null then 'condition'
            when procedures.reason_code is not null then 'reason_code'
        end as reason_source
    from procedures
    left join conditions
        on procedures.reason_condition_id = conditions.condition_id

)

select * from final
