{#- Every reference field Synthea writes in every resource of its type, resolved or not.
    Grain: one row per resource (newest version) and reference field. `reference` is null
    where the field is absent (undefined); `target_resource_id` is null where the text
    points at nothing in the warehouse (unresolved): typically a conditional reference
    (`Practitioner?identifier=...|<NPI>`) whose run-level bundle was never loaded.
    Optional fields (reasonReference, Claim.prescription) are not listed: absent there is
    not a defect.

    Incremental: a run reads the resources loaded since the newest row it holds (their
    rows replace any earlier version's), and resolves again the rows it holds whose
    reference a form loaded since then maps (a target that arrived after its referrer).
    `_loaded_at` is the load time of the resource holding the reference. -#}

{%- set reference_fields = {
    'AllergyIntolerance': ['patient'],
    'CarePlan': ['subject', 'encounter', 'careTeam[0]'],
    'CareTeam': ['subject', 'encounter', 'managingOrganization[0]'],
    'Claim': ['patient', 'provider'],
    'Condition': ['subject', 'encounter'],
    'Device': ['patient'],
    'DiagnosticReport': ['subject', 'encounter'],
    'DocumentReference': ['subject', 'custodian', 'author[0]'],
    'Encounter': ['subject', 'serviceProvider', 'participant[0].individual',
                  'location[0].location'],
    'ExplanationOfBenefit': ['patient', 'claim', 'provider', 'facility'],
    'ImagingStudy': ['subject', 'encounter', 'location'],
    'Immunization': ['patient', 'encounter', 'location'],
    'MedicationAdministration': ['subject', 'context'],
    'MedicationRequest': ['subject', 'encounter', 'requester'],
    'Observation': ['subject', 'encounter'],
    'Procedure': ['subject', 'encounter', 'location'],
    'SupplyDelivery': ['patient'],
} %}

{%- set fields = [] -%}
{%- set reference_paths = [] -%}
{%- for resource_type, type_paths in reference_fields.items() -%}
{%- for path in type_paths -%}
{%- do fields.append((resource_type, path)) -%}
{%- if path ~ '.reference' not in reference_paths -%}
{%- do reference_paths.append(path ~ '.reference') -%}
{%- endif -%}
{%- endfor -%}
{%- endfor %}
{%- set reference_types = "'" ~ (reference_fields.keys() | join("', '")) ~ "'" %}
{%- set merging = last_build_has_load_times() %}

with

entries as (

    select * from {{ ref('base_fhir_entries') }}
    where {{ loaded_after_last_build() }}

),

-- The same rows without their JSON (one CTE read twice would be materialized whole).
entry_keys as (

    select
        resource_type,
        resource_id,
        _loaded_at,
        _object_key,
        entry_index
    from {{ ref('base_fhir_entries') }}
    where {{ loaded_after_last_build() }}

),

reference_map as (

    select * from {{ ref('int_reference_map') }}

),
{%- if merging %}

previous_build as (

    select * from {{ this }}

),
{%- endif %}

-- Each resource's newest version, chosen over the key columns (a window that carries the
-- JSON, or even the texts read from it, sorts all of it).
newest_keys as (

    select
        _object_key,
        entry_index
    from entry_keys
    where resource_type in ({{ reference_types }})
    qualify row_number() over (
        partition by resource_type, resource_id
        order by _loaded_at desc, _object_key desc, entry_index desc
    ) = 1

),

-- One pass over the newest resources of the types that have reference fields: the text of
-- every reference path, read in one parse of each resource (json_texts), never held beyond
-- this step (a path its type does not have is read as null and not used).
newest as {{ materialized_cte() }} (

    select
        entries.resource_type,
        entries.resource_id,
        {{ json_texts('entries.resource', reference_paths) }} as texts,
        entries._loaded_at
    from entries
    inner join newest_keys
        on
            entries._object_key = newest_keys._object_key
            and entries.entry_index = newest_keys.entry_index
    where entries.resource_type in ({{ reference_types }})

),
{%- if merging %}

-- The forms loaded after the newest row this model holds.
new_forms as (

    select reference
    from reference_map
    where {{ loaded_after_last_build() }}

),
{%- endif %}

references_found as (

    {% for resource_type, path in fields -%}
    select
        resource_type,
        resource_id,
        '{{ path }}' as reference_path,
        {{ json_texts_at('texts', reference_paths, path ~ '.reference') }} as reference,
        _loaded_at
    from newest
    where resource_type = '{{ resource_type }}'
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}
    {%- if merging %}

    union all

    -- Rows already built whose reference a form loaded since maps, unless their resource
    -- was read again above.
    select
        previous_build.resource_type,
        previous_build.resource_id,
        previous_build.reference_path,
        previous_build.reference,
        previous_build._loaded_at
    from previous_build
    inner join new_forms
        on previous_build.reference = new_forms.reference
    left join newest
        on
            previous_build.resource_type = newest.resource_type
            and previous_build.resource_id = newest.resource_id
    where newest.resource_id is null
    {%- endif %}

),

final as (

    select
        {{ dbt.concat(["references_found.resource_type", "'/'", "references_found.resource_id",
                       "'#'", "references_found.reference_path"]) }} as resource_reference_key,
        references_found.resource_type,
        references_found.resource_id,
        references_found.reference_path,
        references_found.reference,
        reference_map.resource_type as target_resource_type,
        reference_map.resource_id as target_resource_id,
        references_found.reference is not null as is_defined,
        reference_map.resource_id is not null as is_resolved,
        references_found._loaded_at
    from references_found
    left join reference_map
        on references_found.reference = reference_map.reference

)

select * from final
