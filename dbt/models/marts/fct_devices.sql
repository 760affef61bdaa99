{#- Device facts. Grain: one row per Device a patient uses (a glucose meter, a
    wheelchair). FHIR carries no start or stop of use: the manufacture date, which Synthea
    sets shortly before the device is given, stands for the event date. -#}

with

devices as (

    select * from {{ ref('stg_devices') }}

),

final as (

    select
        device_id,
        patient_id,
        code,
        description,
        udi,
        status,
        manufactured_at,
        expires_at,
        cast(manufactured_at as date) as manufactured_date,
        _loaded_at
    from devices

)

select * from final
