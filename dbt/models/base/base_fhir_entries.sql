{#- Flatten once: one row per bundle entry, with its resource. Every staging model reads
    this table instead of re-parsing whole bundles. Incremental by load: only bundles from
    loads not yet flattened are read. -#}
{{ config(unique_key='entry_key') }}

with

bundles as (

    select
        object_key,
        bundle,
        bundle_type,
        load_id,
        loaded_at
    from {{ source('raw', 'fhir_bundles') }}
    {% if is_incremental() %}
    where load_id not in (select distinct _load_id from {{ this }})
    {% endif %}

),

entries as (

    {{ flatten_json_array(
        'bundles',
        json_value('bundle', 'entry'),
        ['object_key', 'bundle_type', 'load_id', 'loaded_at']
    ) }}

),

final as (

    select
        object_key || '#' || cast(index as varchar) as entry_key,
        {{ json_text('value', 'resource.resourceType') }} as resource_type,
        {{ json_text('value', 'resource.id') }} as resource_id,
        {{ json_text('value', 'fullUrl') }} as full_url,
        {{ json_text('value', 'request.method') }} as request_method,
        {{ json_text('value', 'request.url') }} as request_url,
        {{ json_text('value', 'request.ifNoneExist') }} as request_if_none_exist,
        {{ json_value('value', 'resource') }} as resource,
        bundle_type,
        index as entry_index,
        object_key as _object_key,
        load_id as _load_id,
        loaded_at as _loaded_at
    from entries

)

select * from final
