{#- Every reference field Synthea writes in every resource of its type, resolved or not.
    Grain: one row per resource (newest version) and reference field. `reference` is null
    where the field is absent (undefined); `target_resource_id` is null where the text
    points at nothing in the warehouse (unresolved): typically a conditional reference
    (`Practitioner?identifier=...|<NPI>`) whose run-level bundle was never loaded.
    Optional fields (reasonReference, Claim.prescription) are not listed: absent there is
    not a defect. -#}

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
{%- set paths = [] -%}
{%- for resource_type, type_paths in reference_fields.items() -%}
{%- for path in type_paths -%}
{%- do fields.append((resource_type, path)) -%}
{%- if path not in paths -%}{%- do paths.append(path) -%}{%- endif -%}
{%- endfor -%}
{%- endfor %}

with

entries as (

    select * from {{ ref('base_fhir_entries') }}

),

reference_map as (

    select * from {{ ref('int_reference_map') }}

),

-- One pass over the entries: each resource's newest version, and the text of every
-- reference field its type has (a column per distinct path; the JSON is read only for the
-- types that carry the path, and never held beyond this step).
newest as (

    select
        resource_type,
        resource_id,
        {% for path in paths -%}
        {%- set types = [] -%}
        {%- for resource_type, type_path in fields if type_path == path -%}
        {%- do types.append("'" ~ resource_type ~ "'") -%}
        {%- endfor -%}
        case
            when resource_type in ({{ types | join(', ') }})
                then {{ json_text('resource', path ~ '.reference') }}
        end as reference_{{ loop.index }}
        {%- if not loop.last %},{% endif %}
        {% endfor -%}
    from entries
    where
        resource_type in (
            {% for resource_type in reference_fields -%}
            '{{ resource_type }}'{% if not loop.last %},{% endif %}
            {% endfor -%}
        )
    qualify row_number() over (
        partition by resource_type, resource_id
        order by _loaded_at desc, _object_key desc, entry_index desc
    ) = 1

),

references_found as (

    {% for resource_type, path in fields -%}
    select
        resource_type,
        resource_id,
        '{{ path }}' as reference_path,
        reference_{{ paths.index(path) + 1 }} as reference
    from newest
    where resource_type = '{{ resource_type }}'
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}

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
        reference_map.resource_id is not null as is_resolved
    from references_found
    left join reference_map
        on references_found.reference = reference_map.reference

)

select * from final
