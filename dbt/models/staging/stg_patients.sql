{{ config(unique_key='patient_id') }}

with

source as (

    {{ resources_of_type('Patient') }}

),

extensions as (

    -- The nested extensions are picked out first and searched in the next step: a search
    -- inside a search does not translate on every warehouse.
    select
        source.*,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race') }} as race_extension,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity') }} as ethnicity_extension,
        {{ json_array_find('source.resource', 'address[0].extension', 'url',
            'http://hl7.org/fhir/StructureDefinition/geolocation') }} as geolocation
    from source

),

states as (

    select * from {{ ref('us_states') }}

),

renamed as (

    select
        source.resource_id as patient_id,
        cast({{ json_text('source.resource', 'birthDate') }} as date) as birth_date,
        {{ local_date(json_text('source.resource', 'deceasedDateTime')) }} as death_date,
        {{ json_array_find('source.resource', 'identifier', 'type.coding[0].code', 'SS', 'value') }} as ssn,
        {{ json_array_find('source.resource', 'identifier', 'type.coding[0].code', 'DL', 'value') }} as drivers,
        {{ json_array_find('source.resource', 'identifier', 'type.coding[0].code', 'PPN', 'value') }} as passport,
        {{ json_array_find('source.resource', 'name', 'use', 'official', 'prefix[0]') }} as prefix,
        {{ json_array_find('source.resource', 'name', 'use', 'official', 'given[0]') }} as first_name,
        {{ json_array_find('source.resource', 'name', 'use', 'official', 'given[1]') }} as middle_name,
        {{ json_array_find('source.resource', 'name', 'use', 'official', 'family') }} as last_name,
        {{ json_array_find('source.resource', 'name', 'use', 'official', 'suffix[0]') }} as suffix,
        {{ json_array_find('source.resource', 'name', 'use', 'maiden', 'family') }} as maiden_name,
        {{ json_text('source.resource', 'maritalStatus.coding[0].code') }} as marital,
        {{ json_array_find('source.race_extension', 'extension', 'url', 'ombCategory',
            'valueCoding.code') }} as race_code,
        {{ json_array_find('source.race_extension', 'extension', 'url', 'text',
            'valueString') }} as race_text,
        {{ json_array_find('source.ethnicity_extension', 'extension', 'url', 'ombCategory',
            'valueCoding.code') }} as ethnicity_code,
        {{ json_array_find('source.ethnicity_extension', 'extension', 'url', 'text',
            'valueString') }} as ethnicity_text,
        {{ json_text('source.resource', 'gender') }} as gender_text,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', 'valueAddress.city') }} as birthplace_city,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', 'valueAddress.state') }} as birthplace_state,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', 'valueAddress.country') }} as birthplace_country,
        {{ json_text('source.resource', 'address[0].line[0]') }} as address,
        {{ json_text('source.resource', 'address[0].city') }} as city,
        {{ json_text('source.resource', 'address[0].state') }} as state_code,
        {{ json_text('source.resource', 'address[0].postalCode') }} as zip,
        {{ json_array_find('source.geolocation', 'extension', 'url', 'latitude',
            'valueDecimal') }} as lat_text,
        {{ json_array_find('source.geolocation', 'extension', 'url', 'longitude',
            'valueDecimal') }} as lon_text,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://synthetichealth.github.io/synthea/disability-adjusted-life-years', 'valueDecimal') }} as daly_text,
        {{ json_array_find('source.resource', 'extension', 'url',
            'http://synthetichealth.github.io/synthea/quality-adjusted-life-years', 'valueDecimal') }} as qaly_text,
        source._object_key,
        source._load_id,
        source._loaded_at
    from extensions as source

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
