{#- Imaging facts. Grain: one row per image instance of an ImagingStudy
    (series[].instance[]), as Synthea's imaging_studies.csv. -#}

with

imaging as (

    select * from {{ ref('stg_imaging_studies') }}

),

final as (

    select
        imaging_instance_key,
        imaging_study_id,
        cast(series_index as integer) as series_index,
        cast(instance_index as integer) as instance_index,
        patient_id,
        encounter_id,
        date_at,
        cast(date_at as date) as study_date,
        modality_code,
        modality_description,
        bodysite_code,
        bodysite_description,
        sop_code,
        sop_description,
        procedure_code,
        series_uid,
        instance_uid,
        _loaded_at
    from imaging

)

select * from final
