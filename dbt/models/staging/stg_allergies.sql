{{ config(unique_key='allergy_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'AllergyIntolerance') }}

),

renamed as (

    select
        resource_id as allergy_id,
        {{ local_date("coalesce(" ~ json_text('resource', 'recordedDate') ~ ", "
            ~ json_text('resource', 'onsetDateTime') ~ ")") }} as start_date,
        {{ json_text('resource', 'clinicalStatus.coding[0].code') }} as clinical_status,
        {{ reference_id(json_text('resource', 'patient.reference')) }} as patient_id,
        {{ json_text('resource', 'code.coding[0].code') }} as code,
        {{ json_text('resource', 'code.coding[0].system') }} as code_system_uri,
        {{ json_text('resource', 'code.coding[0].display') }} as description,
        {{ json_text('resource', 'type') }} as allergy_type,
        {{ json_text('resource', 'category[0]') }} as category,
        {{ json_text('resource', 'criticality') }} as criticality,
        {{ json_text('resource', 'reaction[0].manifestation[0].coding[0].code') }} as reaction_1,
        {{ json_text('resource', 'reaction[0].manifestation[0].coding[0].display') }} as description_1,
        {{ json_text('resource', 'reaction[0].severity') }} as severity_1,
        {{ json_text('resource', 'reaction[1].manifestation[0].coding[0].code') }} as reaction_2,
        {{ json_text('resource', 'reaction[1].manifestation[0].coding[0].display') }} as description_2,
        {{ json_text('resource', 'reaction[1].severity') }} as severity_2,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select
        allergy_id,
        start_date,
        clinical_status,
        patient_id,
        code,
        -- Synthea's CSV names the code system (SNOMED-CT, RxNorm), FHIR gives its URI.
        case code_system_uri
            when 'http://snomed.info/sct' then 'SNOMED-CT'
            when 'http://www.nlm.nih.gov/research/umls/rxnorm' then 'RxNorm'
            when 'http://loinc.org' then 'LOINC'
            else code_system_uri
        end as code_system,
        description,
        allergy_type,
        category,
        criticality,
        reaction_1,
        description_1,
        upper(severity_1) as severity_1,
        reaction_2,
        description_2,
        upper(severity_2) as severity_2,
        _object_key,
        _load_id,
        _loaded_at
    from renamed

)

select * from final
