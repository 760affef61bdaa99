{#- Reference integrity, in the spirit of fhir-dbt-analytics' metrics. Grain: one row per
    resource type and reference field (see int_resource_references for the fields).
    `reference_count`: resources of the type, each expected to carry the field; `undefined`: the
    field is absent; `unresolved`: present, but its target is not in the warehouse.
    Thresholds: vars dq_max_undefined_share and dq_max_unresolved_share in dbt_project.yml. -#}

with

resource_references as (

    select * from {{ ref('int_resource_references') }}

),

counted as (

    select
        resource_type,
        reference_path,
        count(*) as expected,
        sum(case when not is_defined then 1 else 0 end) as undefined_count,
        sum(case when is_defined and not is_resolved then 1 else 0 end) as unresolved_count
    from resource_references
    group by resource_type, reference_path

),

final as (

    select
        {{ dbt.concat(["resource_type", "'.'", "reference_path"]) }} as dq_key,
        resource_type,
        reference_path,
        -- Not `references`: DuckDB and Snowflake (with every ANSI keyword) reserve it.
        cast(expected as integer) as reference_count,
        cast(undefined_count as integer) as undefined,
        cast(unresolved_count as integer) as unresolved,
        cast(expected - undefined_count - unresolved_count as integer) as resolved,
        cast(undefined_count as double) / expected as undefined_share,
        cast(unresolved_count as double) / expected as unresolved_share,
        cast({{ var('dq_max_undefined_share') }} as double) as max_undefined_share,
        cast({{ var('dq_max_unresolved_share') }} as double) as max_unresolved_share,
        cast(undefined_count as double) / expected <= {{ var('dq_max_undefined_share') }}
        and cast(unresolved_count as double) / expected <= {{ var('dq_max_unresolved_share') }}
            as is_within_threshold
    from counted

)

select * from final
