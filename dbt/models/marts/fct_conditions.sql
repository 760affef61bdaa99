{#- Condition facts. Grain: one row per Condition (a diagnosis or finding episode of a
    patient). The category separates disorders from findings, social determinants and
    situations, from the SNOMED semantic tag of the display; the seed condition_codes names
    the tag where Synthea's display has none and marks the social-determinant findings. -#}

with

conditions as (

    select * from {{ ref('stg_conditions') }}

),

condition_codes as (

    select * from {{ ref('condition_codes') }}

),

tagged as (

    select
        conditions.condition_id,
        conditions.patient_id,
        conditions.encounter_id,
        conditions.code_system,
        conditions.code,
        conditions.description,
        coalesce(
            {{ snomed_semantic_tag('conditions.description') }},
            condition_codes.semantic_tag
        ) as semantic_tag,
        coalesce(condition_codes.is_social_determinant, false) as is_social_determinant,
        conditions.clinical_status,
        conditions.start_date,
        conditions.stop_date,
        conditions._loaded_at
    from conditions
    left join condition_codes
        on conditions.code = condition_codes.code

),

final as (

    select
        condition_id,
        patient_id,
        encounter_id,
        code_system,
        code,
        description,
        semantic_tag,
        case
            when is_social_determinant then 'social_determinant'
            -- 'Sprain (morphologic abnormality)': a body-structure tag on a problem list.
            when semantic_tag in ('disorder', 'morphologic abnormality') then 'disorder'
            when semantic_tag = 'finding' then 'finding'
            when semantic_tag = 'situation' then 'situation'
            when semantic_tag is null then 'unspecified'
            else 'other'
        end as condition_category,
        clinical_status,
        stop_date is null as is_active,
        start_date,
        stop_date,
        -- Date minus date: whole days on both warehouses.
        cast(stop_date - start_date as integer) as duration_days,
        _loaded_at
    from tagged

)

select * from final
