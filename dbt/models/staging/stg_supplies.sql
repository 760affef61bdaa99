{{ config(unique_key='supply_delivery_id') }}

with

source as (

    {{ resources_of_type(ref('base_fhir_entries'), 'SupplyDelivery') }}

),

renamed as (

    select
        resource_id as supply_delivery_id,
        {{ local_date(json_text('resource', 'occurrenceDateTime')) }} as supply_date,
        {{ reference_id(json_text('resource', 'patient.reference')) }} as patient_id,
        {{ json_text('resource', 'suppliedItem.itemCodeableConcept.coding[0].code') }} as code,
        {{ json_text('resource', 'suppliedItem.itemCodeableConcept.coding[0].display') }} as description,
        {{ json_number('resource', 'suppliedItem.quantity.value') }} as quantity,
        _object_key,
        _load_id,
        _loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
