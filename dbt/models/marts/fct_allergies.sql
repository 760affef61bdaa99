{#- Allergy facts. Grain: one row per AllergyIntolerance of a patient, with its first two
    reactions as Synthea's allergies.csv has them. -#}

with

allergies as (

    select * from {{ ref('stg_allergies') }}

),

final as (

    select
        allergy_id,
        patient_id,
        code_system,
        code,
        description,
        allergy_type,
        category,
        criticality,
        clinical_status,
        clinical_status = 'active' as is_active,
        start_date,
        reaction_1,
        description_1,
        severity_1,
        reaction_2,
        description_2,
        severity_2,
        _loaded_at
    from allergies

)

select * from final
