{{ config(unique_key='patient_id') }}

with

states as (

    select * from {{ ref('us_states') }}

),

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Patient') }}

),

identifiers as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'identifier', 'type.coding[0].code', [
        {'equals': 'SS', 'returns': 'value', 'column': 'ssn'},
        {'equals': 'DL', 'returns': 'value', 'column': 'drivers'},
        {'equals': 'PPN', 'returns': 'value', 'column': 'passport'}
    ]) }}

),

names as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'name', 'use', [
        {'equals': 'official', 'returns': 'prefix[0]', 'column': 'prefix'},
        {'equals': 'official', 'returns': 'given[0]', 'column': 'first_name'},
        {'equals': 'official', 'returns': 'given[1]', 'column': 'middle_name'},
        {'equals': 'official', 'returns': 'family', 'column': 'last_name'},
        {'equals': 'official', 'returns': 'suffix[0]', 'column': 'suffix'},
        {'equals': 'maiden', 'returns': 'family', 'column': 'maiden_name'}
    ]) }}

),

extensions as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'extension', 'url', [
        {'equals': 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
         'returns': none, 'column': 'race_extension'},
        {'equals': 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity',
         'returns': none, 'column': 'ethnicity_extension'},
        {'equals': 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
         'returns': 'valueAddress.city', 'column': 'birthplace_city'},
        {'equals': 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
         'returns': 'valueAddress.state', 'column': 'birthplace_state'},
        {'equals': 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
         'returns': 'valueAddress.country', 'column': 'birthplace_country'},
        {'equals': 'http://synthetichealth.github.io/synthea/disability-adjusted-life-years',
         'returns': 'valueDecimal', 'column': 'daly_text'},
        {'equals': 'http://synthetichealth.github.io/synthea/quality-adjusted-life-years',
         'returns': 'valueDecimal', 'column': 'qaly_text'}
    ]) }}

),

address_extensions as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'address[0].extension', 'url', [
        {'equals': 'http://hl7.org/fhir/StructureDefinition/geolocation',
         'returns': none, 'column': 'geolocation'}
    ]) }}

),

-- The nested extensions are searched from the extension found one step before.
races as (

    {{ json_array_lookup('extensions', 'resource_id', 'race_extension', 'extension', 'url', [
        {'equals': 'ombCategory', 'returns': 'valueCoding.code', 'column': 'race_code'},
        {'equals': 'text', 'returns': 'valueString', 'column': 'race_text'}
    ]) }}

),

ethnicities as (

    {{ json_array_lookup('extensions', 'resource_id', 'ethnicity_extension', 'extension', 'url', [
        {'equals': 'ombCategory', 'returns': 'valueCoding.code', 'column': 'ethnicity_code'},
        {'equals': 'text', 'returns': 'valueString', 'column': 'ethnicity_text'}
    ]) }}

),

coordinates as (

    {{ json_array_lookup('address_extensions', 'resource_id', 'geolocation', 'extension', 'url', [
        {'equals': 'latitude', 'returns': 'valueDecimal', 'column': 'lat_text'},
        {'equals': 'longitude', 'returns': 'valueDecimal', 'column': 'lon_text'}
    ]) }}

),

renamed as (

    select
        source.resource_id as patient_id,
        cast({{ json_text('source.resource', 'birthDate') }} as date) as birth_date,
        {{ local_date(json_text('source.resource', 'deceasedDateTime')) }} as death_date,
        identifiers.ssn,
        identifiers.drivers,
        identifiers.passport,
        names.prefix,
        names.first_name,
        names.middle_name,
        names.last_name,
        names.suffix,
        names.maiden_name,
        {{ json_text('source.resource', 'maritalStatus.coding[0].code') }} as marital,
        races.race_code,
        races.race_text,
        ethnicities.ethnicity_code,
        ethnicities.ethnicity_text,
        {{ json_text('source.resource', 'gender') }} as gender_text,
        extensions.birthplace_city,
        extensions.birthplace_state,
        extensions.birthplace_country,
        {{ json_text('source.resource', 'address[0].line[0]') }} as address,
        {{ json_text('source.resource', 'address[0].city') }} as city,
        {{ json_text('source.resource', 'address[0].state') }} as state_code,
        {{ json_text('source.resource', 'address[0].postalCode') }} as zip,
        coordinates.lat_text,
        coordinates.lon_text,
        extensions.daly_text,
        extensions.qaly_text,
        source._object_key,
        source._load_id,
        source._loaded_at
    from source
    left join identifiers
        on source.resource_id = identifiers.resource_id
    left join names
        on source.resource_id = names.resource_id
    left join extensions
        on source.resource_id = extensions.resource_id
    left join races
        on source.resource_id = races.resource_id
    left join ethnicities
        on source.resource_id = ethnicities.resource_id
    left join coordinates
        on source.resource_id = coordinates.resource_id

),

final as (

    select
        renamed.patient_id,
        renamed.birth_date,
        renamed.death_date,
        renamed.ssn,
        renamed.drivers,
        renamed.passport,
        renamed.prefix,
        renamed.first_name,
        renamed.middle_name,
        renamed.last_name,
        renamed.suffix,
        renamed.maiden_name,
        renamed.marital,
        -- The OMB category code first: its text differs between builds ("Other",
        -- "Other Race"); the text only where a bundle has no code.
        case
            when renamed.race_code = '2106-3' then 'white'
            when renamed.race_code = '2054-5' then 'black'
            when renamed.race_code = '2028-9' then 'asian'
            when renamed.race_code = '1002-5' then 'native'
            when renamed.race_code = '2076-8' then 'hawaiian'
            when renamed.race_code = '2131-1' then 'other'
            when lower(renamed.race_text) = 'white' then 'white'
            when lower(renamed.race_text) = 'black or african american' then 'black'
            when lower(renamed.race_text) = 'asian' then 'asian'
            when lower(renamed.race_text) = 'american indian or alaska native' then 'native'
            when lower(renamed.race_text) = 'native hawaiian or other pacific islander' then 'hawaiian'
            when lower(renamed.race_text) in ('other', 'other race') then 'other'
            else lower(renamed.race_text)
        end as race,
        case
            when renamed.ethnicity_code = '2135-2' then 'hispanic'
            when renamed.ethnicity_code = '2186-5' then 'nonhispanic'
            when lower(renamed.ethnicity_text) = 'hispanic or latino' then 'hispanic'
            when lower(renamed.ethnicity_text) = 'not hispanic or latino' then 'nonhispanic'
            else lower(renamed.ethnicity_text)
        end as ethnicity,
        case renamed.gender_text
            when 'male' then 'M'
            when 'female' then 'F'
            else upper(substr(renamed.gender_text, 1, 1))
        end as gender,
        {{ dbt.concat(["coalesce(renamed.birthplace_city, '')", "', '",
                       "coalesce(renamed.birthplace_state, '')", "', '",
                       "coalesce(renamed.birthplace_country, '')"]) }} as birthplace,
        renamed.address,
        renamed.city,
        coalesce(states.state_name, renamed.state_code) as state,
        renamed.state_code,
        cast(null as varchar) as county,
        cast(null as varchar) as fips,
        renamed.zip,
        try_cast(renamed.lat_text as double) as lat,
        try_cast(renamed.lon_text as double) as lon,
        cast(null as double) as healthcare_expenses,
        cast(null as double) as healthcare_coverage,
        cast(null as double) as income,
        try_cast(renamed.daly_text as double) as daly,
        try_cast(renamed.qaly_text as double) as qaly,
        renamed._object_key,
        renamed._load_id,
        renamed._loaded_at
    from renamed
    left join states
        on renamed.state_code = states.state_code

)

select * from final
