{#- Observation facts. Grain: one row per observation value (a component of a panel such as
    blood pressure is its own row), keyed by observation_key. -#}

with

observations as (

    select * from {{ ref('stg_observations') }}

),

final as (

    select
        observation_key,
        observation_id,
        component_index,
        patient_id,
        encounter_id,
        category,
        code,
        description,
        value_type,
        value_number,
        value_text,
        units,
        date_at,
        cast(date_at as date) as observation_date,
        _loaded_at
    from observations

)

select * from final
