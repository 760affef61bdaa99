{#- The organization dimension: one row per provider Organization of the run-level
    hospitalInformation bundles (hospitals, practices, urgent care centres). -#}

with

organizations as (

    select * from {{ ref('stg_organizations') }}

),

final as (

    select
        organization_id,
        name,
        organization_type,
        location_id,
        address,
        city,
        state,
        zip,
        lat,
        lon,
        phone,
        utilization as utilization_encounters,
        _loaded_at
    from organizations

)

select * from final
