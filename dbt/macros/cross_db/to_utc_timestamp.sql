{#- A FHIR dateTime with offset ('2003-03-03T13:55:10-05:00') as a UTC timestamp without
    time zone; null when the text is not a timestamp. -#}
{% macro to_utc_timestamp(text_expr) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'fhirflow')(text_expr)) }}
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(text_expr) -%}
    (try_cast({{ text_expr }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{#- TRY_CAST rather than TRY_TO_TIMESTAMP_TZ: both are Snowflake, only the cast runs on
    fakesnow. -#}
{% macro snowflake__to_utc_timestamp(text_expr) -%}
    convert_timezone('UTC', try_cast({{ text_expr }} as timestamp_tz))::timestamp_ntz
{%- endmacro %}

{% macro default__to_utc_timestamp(text_expr) -%}
    {{ raise_unsupported_adapter('to_utc_timestamp') }}
{%- endmacro %}
