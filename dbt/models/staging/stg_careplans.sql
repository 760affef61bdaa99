{{ config(unique_key='careplan_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'CarePlan') }}

),

-- category[0] is US Core's assess-plan; the SNOMED category is the care plan itself.
snomed_categories as (

    {{ json_array_lookup('source', 'resource_id', 'resource', 'category', 'coding[0].system', [
        {'equals': 'http://snomed.info/sct', 'returns': 'coding[0].code', 'column': 'code'},
        {'equals': 'http://snomed.info/sct', 'returns': 'coding[0].display', 'column': 'description'}
    ]) }}

),

renamed as (

    select
        source.resource_id as careplan_id,
        {{ local_date(json_text('source.resource', 'period.start')) }} as start_date,
        {{ local_date(json_text('source.resource', 'period.end')) }} as stop_date,
        {{ reference_id(json_text('source.resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('source.resource', 'encounter.reference')) }} as encounter_id,
        snomed_categories.code,
        snomed_categories.description,
        {{ reference_id(json_text('source.resource', 'addresses[0].reference')) }} as reason_condition_id,
        {{ json_text('source.resource', 'status') }} as status,
        source._object_key,
        source._load_id,
        source._loaded_at
    from source
    left join snomed_categories
        on source.resource_id = snomed_categories.resource_id

),

final as (

    select * from renamed

)

select * from final
