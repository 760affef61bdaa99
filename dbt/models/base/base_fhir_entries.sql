{#- One row per resource in RAW, whatever the input format: bundle entries and NDJSON lines
    alike, as the load stage wrote them into RAW.FHIR_RESOURCES (parsed once, at load time,
    with bad entries already quarantined in RAW.ENTRY_ERRORS). A view: RAW already has the
    shape the staging models read, so nothing is copied or re-parsed here. -#}
{{ config(materialized='view') }}

with

resources as (

    select * from {{ source('raw', 'fhir_resources') }}

),

final as (

    select
        object_key || '#' || cast(entry_index as varchar) as entry_key,
        resource_type,
        resource_id,
        full_url,
        request_method,
        request_url,
        request_if_none_exist,
        resource,
        bundle_type,
        entry_index,
        line_number,
        object_key as _object_key,
        load_id as _load_id,
        loaded_at as _loaded_at
    from resources

)

select * from final
