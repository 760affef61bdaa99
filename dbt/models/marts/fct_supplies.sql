{#- Supply facts. Grain: one row per SupplyDelivery (a quantity of one supply item given to
    a patient on one day). -#}

with

supplies as (

    select * from {{ ref('stg_supplies') }}

),

final as (

    select
        supply_delivery_id,
        patient_id,
        code,
        description,
        supply_date,
        cast(quantity as integer) as quantity,
        _loaded_at
    from supplies

)

select * from final
