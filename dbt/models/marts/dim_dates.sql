{#- The date dimension: one row per calendar day from the earliest to the latest date any
    fact or dimension keys on (birth dates included), so every date key has its row. -#}

{%- set keyed_dates = [
    ('dim_patients', 'birth_date'),
    ('dim_patients', 'death_date'),
    ('fct_encounters', 'start_date'),
    ('fct_conditions', 'start_date'),
    ('fct_conditions', 'stop_date'),
    ('fct_medications', 'start_date'),
    ('fct_procedures', 'start_date'),
    ('fct_observations', 'observation_date'),
    ('fct_immunizations', 'immunization_date'),
    ('fct_allergies', 'start_date'),
    ('fct_careplans', 'start_date'),
    ('fct_careplans', 'stop_date'),
    ('fct_claims', 'service_date'),
    ('fct_claim_lines', 'from_date'),
    ('fct_devices', 'manufactured_date'),
    ('fct_supplies', 'supply_date'),
    ('fct_imaging_studies', 'study_date'),
    ('fct_payer_coverage', 'start_date'),
    ('fct_payer_coverage', 'end_date'),
] %}
{%- set models = [] -%}
{%- for model, column in keyed_dates if model not in models -%}
{%- do models.append(model) -%}
{%- endfor %}

with

{% for model in models -%}
{{ model }} as (

    select * from {{ ref(model) }}

),

{% endfor -%}

keyed as (

    {% for model, column in keyed_dates -%}
    select {{ column }} as date_day from {{ model }}
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}

),

bounds as (

    select
        min(date_day) as first_day,
        max(date_day) as last_day
    from keyed

),

days as (

    {{ date_spine_days('bounds', 'first_day', 'last_day') }}

),

parts as (

    select
        date_day,
        cast(extract(year from date_day) as integer) as year,
        cast(extract(quarter from date_day) as integer) as quarter,
        cast(extract(month from date_day) as integer) as month,
        cast(extract(day from date_day) as integer) as day_of_month,
        {{ iso_date_part('year', 'date_day') }} as iso_year,
        {{ iso_date_part('week', 'date_day') }} as iso_week,
        {{ iso_date_part('weekday', 'date_day') }} as day_of_week
    from days

),

final as (

    select
        date_day,
        year,
        quarter,
        month,
        -- Names by number rather than the warehouses' own functions, which spell them
        -- differently (DuckDB 'January', Snowflake 'Jan').
        case month
            {% for name in ['January', 'February', 'March', 'April', 'May', 'June', 'July',
                            'August', 'September', 'October', 'November', 'December'] -%}
            when {{ loop.index }} then '{{ name }}'
            {% endfor -%}
        end as month_name,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        iso_year,
        iso_week,
        day_of_month,
        day_of_week,
        case day_of_week
            {% for name in ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday',
                            'Sunday'] -%}
            when {{ loop.index }} then '{{ name }}'
            {% endfor -%}
        end as day_name,
        day_of_week in (6, 7) as is_weekend
    from parts

)

select * from final
