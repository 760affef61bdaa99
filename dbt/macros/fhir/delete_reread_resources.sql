{#- The pre-hook of the incremental models that make several rows of one resource: the
    SQL-on-FHIR view models (models/views, generated) and the staging models that unnest a
    list (components, claim items, imaging instances). On an incremental run, delete the
    rows of every resource of `resource_type` that the run reads again (loaded after the
    newest row the model holds, less the lookback), `id_column` naming the resource's id in
    the model; the run then appends (views) or merges (staging) the rows of the newest
    versions. So a re-delivered resource keeps only its newest rows, also where the new
    version has fewer rows (components) or none (a view's `where` no longer matches): a
    merge on the row's own key alone leaves the rows the new version no longer has.
    A table built before its rows carried `_loaded_at` is emptied: the run reads all of
    RAW again. Nothing on a first or full build. -#}
{% macro delete_reread_resources(resource_type, id_column='_resource_id') -%}
    {%- if is_incremental() -%}
        {%- if last_build_has_load_times() -%}
    delete from {{ this }}
    where {{ id_column }} in (
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
