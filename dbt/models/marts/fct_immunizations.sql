{#- Immunization facts. Grain: one row per Immunization (one vaccine dose). Cost: the net
    of the encounter claim's item for the vaccine's code. -#}

with

immunizations as (

    select * from {{ ref('stg_immunizations') }}

),

item_costs as (

    select * from {{ ref('int_encounter_item_costs') }}

),

final as (

    select
        immunizations.immunization_id,
        immunizations.patient_id,
        immunizations.encounter_id,
        immunizations.code,
        immunizations.description,
        immunizations.status,
        immunizations.date_at,
        cast(immunizations.date_at as date) as immunization_date,
        item_costs.amount as base_cost,
        immunizations._loaded_at
    from immunizations
    left join item_costs
        on
            immunizations.encounter_id = item_costs.encounter_id
            and immunizations.code = item_costs.code

)

select * from final
