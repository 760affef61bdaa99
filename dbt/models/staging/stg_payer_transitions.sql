{#- What FHIR shows of a patient's insurance history: runs of consecutive claims billed to
    the same payer (there is no Coverage resource). A row spans the first to the last claim of
    a run; Synthea's own payer_transitions.csv has yearly plan records with member ids, which
    FHIR does not carry. -#}
{{ config(unique_key='payer_transition_key') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'Claim') }}

),

claims as (

    select
        {{ reference_id(json_text('resource', 'patient.reference')) }} as patient_id,
        {{ json_text('resource', 'insurance[0].coverage.display') }} as payer_name,
        {{ to_utc_timestamp(json_text('resource', 'billablePeriod.start')) }} as service_date_at,
        resource_id as claim_id,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

ordered as (

    select
        *,
        lag(payer_name) over (
            partition by patient_id order by service_date_at, claim_id
        ) as previous_payer_name
    from claims

),

flagged as (

    select
        *,
        case
            when previous_payer_name = payer_name then 0
            when previous_payer_name is null and payer_name is null then 0
            else 1
        end as is_new_run
    from ordered

),

runs as (

    select
        *,
        -- An integer, so the key reads '<patient>#1' whatever type a warehouse's sum has.
        cast(sum(is_new_run) over (
            partition by patient_id order by service_date_at, claim_id
            rows between unbounded preceding and current row
        ) as integer) as run_number
    from flagged

),

final as (

    select
        patient_id || '#' || cast(run_number as varchar) as payer_transition_key,
        patient_id,
        run_number,
        min(service_date_at) as start_at,
        max(service_date_at) as end_at,
        {{ dbt.hash('max(payer_name)') }} as payer_id,
        max(payer_name) as payer_name,
        count(*) as claim_count,
        max(_object_key) as _object_key,
        max(_load_id) as _load_id,
        max(_loaded_at) as _loaded_at
    from runs
    group by patient_id, run_number

)

select * from final
