{#- The newest version of each resource of one type, from `relation`: the base model,
    `ref('base_fhir_entries')`, called in the staging model's first (import) CTE, so every
    model shows its ref() at the top. Not a shared `entries` CTE over the base model: a model
    that takes two types from one CTE makes DuckDB materialize it (both types' JSON) in
    memory, where a scan per type streams and reads only its own type's rows.

    On an incremental run only rows loaded after the newest row the model holds are read,
    less `staging_lookback_days` (default 0: every load commits its rows with one loaded_at
    and loads run one at a time, so a later load is always newer; the seed's 7 days re-read
    a week of RAW on every run, for loaders that overlap). The model merges on its unique
    key. A resource delivered twice (Synthea re-exports ids at scale; a file re-uploaded
    with changes) keeps its newest version only: MERGE on Snowflake fails on duplicate
    source keys. -#}
{% macro resources_of_type(relation, resource_type) -%}
    {%- set lookback = var('staging_lookback_days') | int %}
    select *
    from {{ relation }}
    where resource_type = '{{ resource_type }}'
    {%- if is_incremental() %}
      -- coalesce: a model first built while RAW was empty must still fill later.
      and _loaded_at {{ '>' if lookback == 0 else '>=' }} coalesce(
          (
              select {{ dbt.dateadd('day', -1 * lookback, 'max(_loaded_at)') }}
              from {{ this }}
          ),
          cast('1900-01-01' as timestamp)
      )
    {%- endif %}
    qualify row_number() over (
        partition by resource_id
        order by _loaded_at desc, _object_key desc, entry_index desc
    ) = 1
{%- endmacro %}
