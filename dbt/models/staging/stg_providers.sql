{#- One row per Practitioner of the run-level practitionerInformation bundles, with its
    PractitionerRole (organization, specialty) and the role's Location (coordinates).
    Patient bundles name practitioners only by NPI; int_reference_map maps NPI to id. -#}
{{ config(unique_key='practitioner_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Practitioner') }}

),

role_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'PractitionerRole') }}

),

location_source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Location') }}

),

roles as (

    select
        {{ json_text('resource', 'practitioner.identifier.value') }} as npi,
        {{ json_text('resource', 'organization.identifier.value') }} as organization_id,
        {{ json_text('resource', 'location[0].identifier.value') }} as location_id,
        {{ json_text('resource', 'specialty[0].coding[0].code') }} as speciality_code,
        {{ json_text('resource', 'specialty[0].coding[0].display') }} as speciality
    from role_source
    qualify row_number() over (
        partition by {{ json_text('resource', 'practitioner.identifier.value') }}
        order by _loaded_at desc, resource_id desc
    ) = 1

),

locations as (

    select
        resource_id as location_id,
        {{ json_number('resource', 'position.latitude') }} as lat,
        {{ json_number('resource', 'position.longitude') }} as lon
    from location_source

),

npis as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'identifier', 'system', [
        {'equals': 'http://hl7.org/fhir/sid/us-npi', 'returns': 'value', 'column': 'npi'}
    ]) }}

),

utilization_extensions as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'extension', 'url', [
        {'equals': 'http://synthetichealth.github.io/synthea/utilization-encounters-extension',
         'returns': 'valueInteger', 'column': 'encounters_text'}
    ]) }}

),

renamed as (

    select
        source.resource_id as practitioner_id,
        npis.npi,
        {{ json_text('source.resource', 'name[0].prefix[0]') }} as prefix,
        {{ json_text('source.resource', 'name[0].given[0]') }} as given_name,
        {{ json_text('source.resource', 'name[0].family') }} as family_name,
        {{ json_text('source.resource', 'gender') }} as gender_text,
        {{ json_text('source.resource', 'address[0].line[0]') }} as address,
        {{ json_text('source.resource', 'address[0].city') }} as city,
        {{ json_text('source.resource', 'address[0].state') }} as state,
        {{ json_text('source.resource', 'address[0].postalCode') }} as zip,
        utilization_extensions.encounters_text,
        source._object_key,
        source._load_id,
        source._loaded_at
    from source
    left join npis
        on source.resource_id = npis.resource_id
    left join utilization_extensions
        on source.resource_id = utilization_extensions.resource_id

),

final as (

    select
        renamed.practitioner_id,
        renamed.npi,
        roles.organization_id,
        {{ dbt.concat(["renamed.given_name", "' '", "renamed.family_name"]) }} as name,
        renamed.prefix,
        case renamed.gender_text
            when 'male' then 'M'
            when 'female' then 'F'
            else upper(substr(renamed.gender_text, 1, 1))
        end as gender,
        roles.speciality_code,
        roles.speciality,
        renamed.address,
        renamed.city,
        renamed.state,
        renamed.zip,
        locations.lat,
        locations.lon,
        cast(renamed.encounters_text as integer) as encounters,
        roles.location_id,
        renamed._object_key,
        renamed._load_id,
        renamed._loaded_at
    from renamed
    left join roles
        on renamed.npi = roles.npi
    left join locations
        on roles.location_id = locations.location_id

)

select * from final
