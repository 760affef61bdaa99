{#- Every form in which Synthea's bundles refer to a resource, mapped to the resource:
    'urn:uuid:<id>' (the entry's fullUrl), '<Type>/<id>', and the conditional references of
    patient bundles to the run-level resources: 'Organization?identifier=<system>|<uuid>',
    'Location?identifier=<system>|<uuid>' and
    'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|<NPI>'. Joining a reference column
    to `reference` gives the referenced resource's id whatever the form.

    Incremental: a run reads the resources loaded since the newest row it holds and
    replaces the forms they bring (a later load's version of a form wins, as in a full
    build); `_loaded_at` is the load time of the resource a form maps to. -#}

with

-- The keys of every resource, without its JSON: two forms below read them.
entries as (

    select
        resource_type,
        resource_id,
        full_url,
        _loaded_at
    from {{ ref('base_fhir_entries') }}
    where {{ loaded_after_last_build() }}

),

-- Only the run-level resources' JSON is read, for their identifiers.
run_level_resources as (

    select
        resource_type,
        resource_id,
        resource,
        _loaded_at
    from {{ ref('base_fhir_entries') }}
    where
        resource_type in ('Organization', 'Location', 'Practitioner')
        and {{ loaded_after_last_build() }}

),

identifiers as (

    {{ flatten_json_array(
        'run_level_resources',
        json_value('resource', 'identifier'),
        ['resource_type', 'resource_id', '_loaded_at']
    ) }}

),

forms as (

    select
        coalesce(full_url, 'urn:uuid:' || resource_id) as reference,
        'urn:uuid' as reference_form,
        resource_type,
        resource_id,
        _loaded_at
    from entries

    union all

    select
        resource_type || '/' || resource_id as reference,
        'relative' as reference_form,
        resource_type,
        resource_id,
        _loaded_at
    from entries

    union all

    select
        resource_type || '?identifier=' || {{ json_text('value', 'system') }} || '|'
        || {{ json_text('value', 'value') }} as reference,
        'conditional' as reference_form,
        resource_type,
        resource_id,
        _loaded_at
    from identifiers
    where
        {{ json_text('value', 'system') }} is not null
        and {{ json_text('value', 'value') }} is not null

),

final as (

    select
        reference,
        reference_form,
        resource_type,
        resource_id,
        _loaded_at
    from forms
    qualify row_number() over (
        partition by reference
        order by _loaded_at desc, resource_id desc
    ) = 1

)

select * from final
