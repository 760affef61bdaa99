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
    source keys.

    The newest version is chosen over the narrow key columns (a window that carries each
    resource's JSON sorts all of it: 4-5x slower over the ExplanationOfBenefits of 1 GB of
    bundles), then joined back to the rows on the entry's key (object key and entry index,
    unique in the base model). A CTE name as `relation` (the generated views pass `entries`,
    a CTE over the base model) is read once: the newest keys are then chosen from the base
    model itself, since DuckDB materializes a CTE read twice, JSON and all. -#}
{% macro resources_of_type(relation, resource_type) -%}
    {%- set newest_first = "row_number() over (
        partition by resource_id
        order by _loaded_at desc, _object_key desc, entry_index desc
    ) = 1" %}
    {%- set rows_wanted -%}
    resource_type = '{{ resource_type }}'
    {%- if is_incremental() %}
      and {{ loaded_after_last_build() }}
    {%- endif %}
    {%- endset %}
    {#- A CTE name: the key columns come from the base model itself, so the CTE is read
        once (a CTE read twice is materialized by DuckDB, JSON and all). -#}
    {%- set keys_from = ref('base_fhir_entries') if relation is string else relation %}
    select resources.*
    from {{ relation }} as resources
    inner join (
        select
            _object_key,
            entry_index
        from {{ keys_from }}
        where {{ rows_wanted }}
        qualify {{ newest_first }}
    ) as newest
        on
            resources._object_key = newest._object_key
            and resources.entry_index = newest.entry_index
    where {{ rows_wanted }}
{%- endmacro %}

{#- On an incremental run, the condition on `_loaded_at` that keeps the rows loaded after
    the newest row the model (`this`) holds, less `staging_lookback_days`; `true` on a
    first or full build, and when the model's table has no `_loaded_at` yet (built before
    it had one: the whole input is read once more and merged). The newest load time is
    read first and written into the SQL as a literal: against a subquery DuckDB reads
    every row of RAW (JSON included) before filtering, against a constant it skips the
    row groups of earlier loads unread. -#}
{% macro loaded_after_last_build() -%}
    {%- if last_build_has_load_times() -%}
      {%- set found = run_query('select ' ~ last_build_load_time() ~ ' from ' ~ this) -%}
      {%- set newest = found.columns[0].values()[0] if found.rows | length else none -%}
      {#- none: a model first built while RAW was empty must still fill later. -#}
      _loaded_at {{ '>' if var('staging_lookback_days') | int == 0 else '>=' }} cast(
          '{{ newest if newest is not none else "1900-01-01 00:00:00" }}' as timestamp)
    {%- else -%}
      true
    {%- endif %}
{%- endmacro %}

{#- An incremental run over a table that holds `_loaded_at`: what it adds is read from the
    rows loaded after the newest it holds. -#}
{% macro last_build_has_load_times() -%}
    {%- if not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {{ return('_loaded_at' in columns) }}
{%- endmacro %}

{#- The newest load time the model holds less `staging_lookback_days`, as an aggregate over
    `this`: a select-list item. -#}
{% macro last_build_load_time() -%}
    {{ dbt.dateadd('day', -1 * (var('staging_lookback_days') | int), 'max(_loaded_at)') }}
{%- endmacro %}
