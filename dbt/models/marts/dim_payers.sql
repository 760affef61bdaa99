{#- The payer dimension: one row per payer name the claims carry (FHIR has no payer
    resource in Synthea's bundles; payer_id is our surrogate, the md5 of the name). -#}

with

payers as (

    select * from {{ ref('stg_payers') }}

),

final as (

    select
        payer_id,
        name as payer_name,
        is_no_insurance,
        _loaded_at
    from payers

)

select * from final
