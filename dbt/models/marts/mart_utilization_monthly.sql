{#- Utilization per month: encounters, patients and cost by encounter class and payer.
    Grain: one row per calendar month (UTC start of the encounter), encounter class and
    payer; an encounter without a claim counts under payer 'none'. -#}

with

encounters as (

    select * from {{ ref('fct_encounters') }}

),

payers as (

    select * from {{ ref('dim_payers') }}

),

monthly as (

    select
        cast({{ dbt.date_trunc('month', 'start_date') }} as date) as month_start_date,
        coalesce(encounter_class, 'unknown') as encounter_class,
        payer_id,
        count(*) as encounters,
        count(distinct patient_id) as patients,
        -- Summed as fixed-point numbers: a sum of doubles depends on the order the rows
        -- arrive in (parallel aggregation), and the same data must give the same figures.
        sum(cast(total_claim_cost as decimal(38, 6))) as total_claim_cost,
        sum(cast(eob_payment as decimal(38, 6))) as eob_payment,
        sum(duration_minutes) as duration_minutes
    from encounters
    group by
        cast({{ dbt.date_trunc('month', 'start_date') }} as date),
        coalesce(encounter_class, 'unknown'),
        payer_id

),

final as (

    select
        {{ dbt.concat(["cast(monthly.month_start_date as varchar)", "'|'",
                       "monthly.encounter_class", "'|'",
                       "coalesce(monthly.payer_id, 'none')"]) }} as utilization_key,
        monthly.month_start_date,
        cast(extract(year from monthly.month_start_date) as integer) as year,
        cast(extract(month from monthly.month_start_date) as integer) as month,
        monthly.encounter_class,
        monthly.payer_id,
        coalesce(payers.payer_name, 'none') as payer_name,
        cast(monthly.encounters as integer) as encounters,
        cast(monthly.patients as integer) as patients,
        cast(monthly.total_claim_cost as double) as total_claim_cost,
        cast(monthly.eob_payment as double) as eob_payment,
        cast(monthly.total_claim_cost as double) / monthly.encounters as cost_per_encounter,
        cast(monthly.duration_minutes as bigint) as duration_minutes
    from monthly
    left join payers
        on monthly.payer_id = payers.payer_id

)

select * from final
