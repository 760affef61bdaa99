{#- Completeness of the keys the marts join on. Grain: one row per staging model and key
    column (its primary key, and the references to patients, encounters and other
    entities). Thresholds per column role: var dq_max_null_share in dbt_project.yml. -#}

{%- set key_columns = [
    ('stg_patients', 'patient_id', 'primary_key'),
    ('stg_encounters', 'encounter_id', 'primary_key'),
    ('stg_encounters', 'patient_id', 'patient'),
    ('stg_encounters', 'organization_id', 'reference'),
    ('stg_encounters', 'provider_reference', 'reference'),
    ('stg_conditions', 'condition_id', 'primary_key'),
    ('stg_conditions', 'patient_id', 'patient'),
    ('stg_conditions', 'encounter_id', 'encounter'),
    ('stg_observations', 'observation_key', 'primary_key'),
    ('stg_observations', 'patient_id', 'patient'),
    ('stg_observations', 'encounter_id', 'encounter'),
    ('stg_medications', 'medication_request_id', 'primary_key'),
    ('stg_medications', 'patient_id', 'patient'),
    ('stg_medications', 'encounter_id', 'encounter'),
    ('stg_procedures', 'procedure_id', 'primary_key'),
    ('stg_procedures', 'patient_id', 'patient'),
    ('stg_procedures', 'encounter_id', 'encounter'),
    ('stg_immunizations', 'immunization_id', 'primary_key'),
    ('stg_immunizations', 'patient_id', 'patient'),
    ('stg_immunizations', 'encounter_id', 'encounter'),
    ('stg_allergies', 'allergy_id', 'primary_key'),
    ('stg_allergies', 'patient_id', 'patient'),
    ('stg_careplans', 'careplan_id', 'primary_key'),
    ('stg_careplans', 'patient_id', 'patient'),
    ('stg_careplans', 'encounter_id', 'encounter'),
    ('stg_devices', 'device_id', 'primary_key'),
    ('stg_devices', 'patient_id', 'patient'),
    ('stg_supplies', 'supply_delivery_id', 'primary_key'),
    ('stg_supplies', 'patient_id', 'patient'),
    ('stg_imaging_studies', 'imaging_instance_key', 'primary_key'),
    ('stg_imaging_studies', 'patient_id', 'patient'),
    ('stg_imaging_studies', 'encounter_id', 'encounter'),
    ('stg_claims', 'claim_id', 'primary_key'),
    ('stg_claims', 'patient_id', 'patient'),
    ('stg_claims', 'encounter_id', 'encounter'),
    ('stg_claims', 'organization_id', 'reference'),
    ('stg_claims', 'provider_reference', 'reference'),
    ('stg_claims', 'payer_name', 'reference'),
    ('stg_claims_transactions', 'claim_transaction_id', 'primary_key'),
    ('stg_claims_transactions', 'claim_id', 'reference'),
    ('stg_claims_transactions', 'patient_id', 'patient'),
    ('stg_payers', 'payer_id', 'primary_key'),
    ('stg_payer_transitions', 'payer_transition_key', 'primary_key'),
    ('stg_payer_transitions', 'patient_id', 'patient'),
    ('stg_payer_transitions', 'payer_id', 'reference'),
    ('stg_providers', 'practitioner_id', 'primary_key'),
    ('stg_providers', 'npi', 'reference'),
    ('stg_providers', 'organization_id', 'reference'),
    ('stg_organizations', 'organization_id', 'primary_key'),
] %}
{%- set thresholds = var('dq_max_null_share') %}
{%- set models = [] -%}
{%- for model, column, role in key_columns if model not in models -%}
{%- do models.append(model) -%}
{%- endfor %}

with

{% for model in models -%}
{{ model }} as (

    select * from {{ ref(model) }}

),

{% endfor -%}

counted as (

    {% for model, column, role in key_columns -%}
    select
        '{{ model }}' as model_name,
        '{{ column }}' as column_name,
        '{{ role }}' as column_role,
        count(*) as row_count,
        count(*) - count({{ column }}) as null_count,
        cast({{ thresholds[role] }} as double) as max_null_share
    from {{ model }}
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}

),

final as (

    select
        {{ dbt.concat(["model_name", "'.'", "column_name"]) }} as dq_key,
        model_name,
        column_name,
        column_role,
        cast(row_count as integer) as row_count,
        cast(null_count as integer) as null_count,
        cast(null_count as double) / nullif(row_count, 0) as null_share,
        max_null_share,
        -- An empty model has nothing missing.
        coalesce(cast(null_count as double) / nullif(row_count, 0) <= max_null_share, true)
            as is_within_threshold
    from counted

)

select * from final
