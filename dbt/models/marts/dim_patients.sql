{#- The patient dimension: one row per patient, demographics plus encounter history. -#}

with

patients as (

    select * from {{ ref('stg_patients') }}

),

encounters as (

    select * from {{ ref('stg_encounters') }}

),

encounter_history as (

    select
        patient_id,
        count(*) as encounter_count,
        min(start_at) as first_encounter_at,
        max(start_at) as last_encounter_at
    from encounters
    group by patient_id

),

ages as (

    select
        patients.patient_id,
        -- Deterministic: age at death, or at the last encounter for the living, never
        -- tied to the day the model runs.
        cast(floor({{ dbt.datediff('patients.birth_date',
            'coalesce(patients.death_date, cast(encounter_history.last_encounter_at as date))',
            'day') }} / 365.25) as integer) as age_years
    from patients
    left join encounter_history
        on patients.patient_id = encounter_history.patient_id

),

final as (

    select
        patients.patient_id,
        {{ dbt.concat(["patients.first_name", "' '", "patients.last_name"]) }} as full_name,
        patients.prefix,
        patients.first_name,
        patients.middle_name,
        patients.last_name,
        patients.gender,
        patients.birth_date,
        patients.death_date,
        patients.death_date is not null as is_deceased,
        ages.age_years,
        patients.marital,
        patients.race,
        patients.ethnicity,
        patients.address,
        patients.city,
        patients.state,
        patients.zip,
        patients.lat,
        patients.lon,
        coalesce(encounter_history.encounter_count, 0) as encounter_count,
        encounter_history.first_encounter_at,
        encounter_history.last_encounter_at,
        patients._loaded_at,
        patients.death_date is null as is_alive,
        case
            when ages.age_years < 18 then '0-17'
            when ages.age_years < 35 then '18-34'
            when ages.age_years < 50 then '35-49'
            when ages.age_years < 65 then '50-64'
            when ages.age_years < 80 then '65-79'
            when ages.age_years >= 80 then '80+'
        end as age_band
    from patients
    left join encounter_history
        on patients.patient_id = encounter_history.patient_id
    left join ages
        on patients.patient_id = ages.patient_id

)

select * from final
