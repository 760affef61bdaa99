{#- One row per ImagingStudy instance (series[].instance[]), as Synthea's imaging_studies.csv. -#}
{{ config(
    unique_key='imaging_instance_key',
    pre_hook="{{ delete_reread_resources('ImagingStudy', 'imaging_study_id') }}"
) }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'ImagingStudy') }}

),

studies as (

    select
        resource_id as imaging_study_id,
        resource,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

series_flat as (

    {{ flatten_json_array(
        'studies',
        json_value('resource', 'series'),
        ['imaging_study_id', 'resource', '_object_key', '_load_id', '_loaded_at']
    ) }}

),

series as (

    select
        imaging_study_id,
        resource,
        value as series,
        index as series_index,
        _object_key,
        _load_id,
        _loaded_at
    from series_flat

),

instances as (

    {{ flatten_json_array(
        'series',
        json_value('series', 'instance'),
        ['imaging_study_id', 'resource', 'series', 'series_index',
         '_object_key', '_load_id', '_loaded_at']
    ) }}

),

renamed as (

    select
        imaging_study_id || '#' || cast(series_index as varchar) || '#' || cast(index as varchar)
            as imaging_instance_key,
        imaging_study_id,
        series_index,
        index as instance_index,
        {{ to_utc_timestamp(json_text('resource', 'started')) }} as date_at,
        {{ reference_id(json_text('resource', 'subject.reference')) }} as patient_id,
        {{ reference_id(json_text('resource', 'encounter.reference')) }} as encounter_id,
        {{ json_text('series', 'uid') }} as series_uid,
        {{ json_text('series', 'bodySite.code') }} as bodysite_code,
        {{ json_text('series', 'bodySite.display') }} as bodysite_description,
        {{ json_text('series', 'modality.code') }} as modality_code,
        {{ json_text('series', 'modality.display') }} as modality_description,
        {{ json_text('value', 'uid') }} as instance_uid,
        {{ json_text('value', 'sopClass.code') }} as sop_class,
        {{ json_text('value', 'title') }} as instance_title,
        {{ json_text('resource', 'procedureCode[0].coding[0].code') }} as procedure_code,
        _object_key,
        _load_id,
        _loaded_at
    from instances

),

final as (

    select
        imaging_instance_key,
        imaging_study_id,
        series_index,
        instance_index,
        date_at,
        patient_id,
        encounter_id,
        series_uid,
        bodysite_code,
        bodysite_description,
        modality_code,
        modality_description,
        instance_uid,
        -- The CSV writes the bare DICOM UID; FHIR prefixes it with urn:oid:.
        case
            when sop_class like 'urn:oid:%' then substr(sop_class, 9)
            else sop_class
        end as sop_code,
        instance_title as sop_description,
        procedure_code,
        _object_key,
        _load_id,
        _loaded_at
    from renamed

)

select * from final
