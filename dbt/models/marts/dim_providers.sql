{#- The provider dimension: one row per Practitioner of the run-level
    practitionerInformation bundles, with its role's organization and specialty. -#}

with

providers as (

    select * from {{ ref('stg_providers') }}

),

final as (

    select
        practitioner_id as provider_id,
        npi,
        name,
        prefix,
        gender,
        speciality_code,
        speciality,
        organization_id,
        location_id,
        address,
        city,
        state,
        zip,
        lat,
        lon,
        encounters as utilization_encounters,
        _loaded_at
    from providers

)

select * from final
