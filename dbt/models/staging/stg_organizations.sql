{#- One row per provider Organization of the run-level hospitalInformation bundles, with the
    coordinates of the Location it manages. -#}
{{ config(unique_key='organization_id') }}

with

source as (

    {{ resources_of_type('Organization') }}

),

location_source as (

    {{ resources_of_type('Location') }}

),

locations as (

    select
        {{ json_text('resource', 'managingOrganization.identifier.value') }} as organization_id,
        resource_id as location_id,
        {{ json_number('resource', 'position.latitude') }} as lat,
        {{ json_number('resource', 'position.longitude') }} as lon
    from location_source
    qualify row_number() over (
        partition by {{ json_text('resource', 'managingOrganization.identifier.value') }}
        order by _loaded_at desc, resource_id asc
    ) = 1

),

renamed as (

    select
        resource_id as organization_id,
        {{ json_text('resource', 'name') }} as name,
        {{ json_text('resource', 'address[0].line[0]') }} as address,
        {{ json_text('resource', 'address[0].city') }} as city,
        {{ json_text('resource', 'address[0].state') }} as state,
        {{ json_text('resource', 'address[0].postalCode') }} as zip,
        {{ json_array_find('resource', 'telecom', 'system', 'phone', 'value') }} as phone,
        {{ json_array_find('resource', 'extension', 'url',
            'http://synthetichealth.github.io/synthea/utilization-encounters-extension',
            'valueInteger') }} as utilization_text,
        {{ json_text('resource', 'type[0].coding[0].code') }} as organization_type,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select
        renamed.organization_id,
        renamed.name,
        renamed.address,
        renamed.city,
        renamed.state,
        renamed.zip,
        locations.lat,
        locations.lon,
        renamed.phone,
        cast(renamed.utilization_text as integer) as utilization,
        renamed.organization_type,
        locations.location_id,
        renamed._object_key,
        renamed._load_id,
        renamed._loaded_at
    from renamed
    left join locations
        on renamed.organization_id = locations.organization_id

)

select * from final
