{#- The reason of each prescription as Synthea's medications.csv gives it: the code of the
    Condition that reasonReference points to, else the request's own reasonCode. -#}

with

medications as (

    select * from {{ ref('stg_medications') }}

),

conditions as (

    select * from {{ ref('stg_conditions') }}

),

final as (

    select
        medications.medication_request_id,
        medications.patient_id,
        medications.reason_condition_id,
        coalesce(conditions.code, medications.reason_code) as reason_code,
        coalesce(conditions.description, medications.reason_description) as reason_description,
        case
            when conditions.code is not null then 'condition'
            when medications.reason_code is not null then 'reason_code'
        end as reason_source
    from medications
    left join conditions
        on medications.reason_condition_id = conditions.condition_id

)

select * from final
