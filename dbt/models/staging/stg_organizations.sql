{#- One row per provider Organization of the run-level hospitalInformation bundles, with the
    coordinates of the Location it manages. -#}
{{ config(unique_key='organization_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Organization') }}

),

location_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Location') }}

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

phones as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'telecom', 'system', [
        {'equals': 'phone', 'returns': 'value', 'column': 'phone'}
    ]) }}

),

utilization_extensions as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'extension', 'url', [
        {'equals': 'http://synthetichealth.github.io/synthea/utilization-encounters-extension',
         'returns': 'valueInteger', 'column': 'utilization_text'}
    ]) }}

),

renamed as (

    select
        source.resource_id as organization_id,
        {{ json_text('source.resource', 'name') }} as name,
        {{ json_text('source.resource', 'address[0].line[0]') }} as address,
        {{ json_text('source.resource', 'address[0].city') }} as city,
        {{ json_text('source.resource', 'address[0].state') }} as state,
        {{ json_text('source.resource', 'address[0].postalCode') }} as zip,
        phones.phone,
        utilization_extensions.utilization_text,
        {{ json_text('source.resource', 'type[0].coding[0].code') }} as organization_type,
        source._object_key,
        source._load_id,
        source._loaded_at
    from source
    left join phones
        on source.resource_id = phones.resource_id
    left join utilization_extensions
        on source.resource_id = utilization_extensions.resource_id

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
