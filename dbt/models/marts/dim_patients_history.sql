{#- The patient history (SCD type 2): one row per version of a patient's address, marital
    status and death date, from the snp_patients snapshot. valid_from / valid_to are the
    times of the builds that saw a version (valid_to null: the current one).

    Before the snapshot's first run (a deployment whose scheduled layer tasks run models
    only) there is no history yet, and each patient's current row stands as its first
    version, so the mart and its readers never fail on a missing table. -#}

{%- set snapshot = ref('snp_patients') %}
{%- set snapshot_exists = execute and load_relation(snapshot) is not none %}

with

{% if snapshot_exists -%}
versions as (

    select
        dbt_scd_id as patient_version_id,
        patient_id,
        address,
        city,
        state,
        zip,
        marital,
        death_date,
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to
    from {{ snapshot }}

),
{%- else -%}
patients as (

    select * from {{ ref('stg_patients') }}

),

versions as (

    select
        {{ dbt.hash(dbt.concat(["patient_id", "'|'", "cast(_loaded_at as varchar)"])) }}
            as patient_version_id,
        patient_id,
        address,
        city,
        state,
        zip,
        marital,
        death_date,
        _loaded_at as valid_from,
        cast(null as timestamp) as valid_to
    from patients

),
{%- endif %}

final as (

    select
        patient_version_id,
        patient_id,
        cast(row_number() over (partition by patient_id order by valid_from) as integer)
            as version_number,
        address,
        city,
        state,
        zip,
        marital,
        death_date,
        death_date is not null as is_deceased,
        cast(valid_from as timestamp) as valid_from,
        cast(valid_to as timestamp) as valid_to,
        valid_to is null as is_current
    from versions

)

select * from final
