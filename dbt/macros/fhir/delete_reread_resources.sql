{#- The pre-hook of the incremental SQL-on-FHIR view models (models/views, generated): on
    an incremental run, delete the rows of every resource of `resource_type` that the run
    reads again (loaded after the newest row the view holds, less the lookback), whatever
    the view makes of its new version; the run then appends the rows of the newest
    versions. So a re-delivered resource keeps only its newest rows, also where the new
    version has fewer rows (components) or none (a view's `where` no longer matches).
    A table built before its rows carried `_loaded_at` is emptied: the run reads all of
    RAW again. Nothing on a first or full build. -#}
{% macro delete_reread_resources(resource_type) -%}
    {%- if is_incremental() -%}
        {%- if last_build_has_load_times() -%}
    delete from {{ this }}
    where _resource_id in (
        select resource_id
        from {{ ref('base_fhir_entries') }}
        where
            resource_type = '{{ resource_type }}'
            and {{ loaded_after_last_build() }}
    )
        {%- else -%}
    delete from {{ this }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
