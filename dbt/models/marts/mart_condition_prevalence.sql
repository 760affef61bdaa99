{#- Lifetime prevalence of each condition: patients who ever had it, by sex and age band,
    and overall. Grain: one row per condition code, gender and age band, where the
    rows with 'all' in gender or age band (or both) total over it; only groups where at
    least one patient has the condition. Age band as in dim_patients (age at death, or at
    the last encounter). -#}

{%- set groupings = [['gender', 'age_band'], ['gender'], ['age_band'], []] %}

with

conditions as (

    select * from {{ ref('fct_conditions') }}

),

patients as (

    select * from {{ ref('dim_patients') }}

),

codes as (

    select
        code,
        max(description) as description,
        max(condition_category) as condition_category
    from conditions
    group by code

),

patient_groups as (

    select
        patient_id,
        coalesce(gender, 'unknown') as gender,
        coalesce(age_band, 'unknown') as age_band
    from patients

),

patient_codes as (

    select distinct
        conditions.code,
        patient_groups.patient_id,
        patient_groups.gender,
        patient_groups.age_band
    from conditions
    inner join patient_groups
        on conditions.patient_id = patient_groups.patient_id

),

populations as (

    {% for grouping in groupings -%}
    select
        {{ 'gender' if 'gender' in grouping else "'all'" }} as gender,
        {{ 'age_band' if 'age_band' in grouping else "'all'" }} as age_band,
        count(*) as population
    from patient_groups
    {% if grouping %}group by {{ grouping | join(', ') }}{% endif %}
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}

),

with_condition as (

    {% for grouping in groupings -%}
    select
        code,
        {{ 'gender' if 'gender' in grouping else "'all'" }} as gender,
        {{ 'age_band' if 'age_band' in grouping else "'all'" }} as age_band,
        count(*) as patients_with_condition
    from patient_codes
    group by code{% for column in grouping %}, {{ column }}{% endfor %}
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}

),

final as (

    select
        {{ dbt.concat(["with_condition.code", "'|'", "with_condition.gender", "'|'",
                       "with_condition.age_band"]) }} as prevalence_key,
        with_condition.code as condition_code,
        codes.description as condition_description,
        codes.condition_category,
        with_condition.gender,
        with_condition.age_band,
        cast(with_condition.patients_with_condition as integer) as patients_with_condition,
        cast(populations.population as integer) as population,
        cast(with_condition.patients_with_condition as double)
        / populations.population as prevalence,
        cast(with_condition.patients_with_condition as double)
        / overall.patients_with_condition as share_of_patients_with_condition
    from with_condition
    inner join populations
        on
            with_condition.gender = populations.gender
            and with_condition.age_band = populations.age_band
    inner join with_condition as overall
        on
            with_condition.code = overall.code
            and overall.gender = 'all'
            and overall.age_band = 'all'
    inner join codes
        on with_condition.code = codes.code

)

select * from final
