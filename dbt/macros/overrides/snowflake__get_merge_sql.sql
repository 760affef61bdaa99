{#- dbt-snowflake's merge, with two changes, both valid on Snowflake and both what fakesnow
    (our Snowflake test double) needs to run an incremental build:
    - the insert values are qualified by the source alias (`values (DBT_INTERNAL_SOURCE."COL",
      ...)`), which fakesnow can bind;
    - the one MERGE (or INSERT) statement is not wrapped in BEGIN ... COMMIT. dbt-snowflake
      connects with autocommit=True, and Snowflake commits a DML statement run outside an
      explicit transaction at its end, or rolls it back on failure (Transactions, "Autocommit"):
      one statement is already atomic. fakesnow cannot run a MERGE inside BEGIN ... COMMIT
      (its bookkeeping writes a second DuckDB database in the same transaction).
    The root project's macro wins dbt's dispatch over the adapter's own. -#}
{% macro snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
    {%- set names = dest_columns | map(attribute='name') | list -%}
    {%- set dest_cols_csv = get_quoted_csv(names) -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {%- set dml -%}
    {%- if unique_key is none -%}
    {{ sql_header if sql_header is not none }}
    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source_sql }}
    )
    {%- else -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set predicates = [] if incremental_predicates is none else [] + incremental_predicates -%}
    {%- for key in keys -%}
        {%- do predicates.append('DBT_INTERNAL_SOURCE.' ~ key ~ ' = DBT_INTERNAL_DEST.' ~ key) -%}
    {%- endfor -%}
    {%- set update_columns = get_merge_update_columns(config.get('merge_update_columns'),
        config.get('merge_exclude_columns'), dest_columns) -%}
    {{ sql_header if sql_header is not none }}
    merge into {{ target }} as DBT_INTERNAL_DEST
        using {{ source_sql }} as DBT_INTERNAL_SOURCE
        on {{ '(' ~ predicates | join(') and (') ~ ')' }}
    when matched then update set
        {% for column_name in update_columns -%}
        {{ column_name }} = DBT_INTERNAL_SOURCE.{{ column_name }}{% if not loop.last %}, {% endif %}
        {%- endfor %}
    when not matched then insert
        ({{ dest_cols_csv }})
    values
        ({% for name in names -%}
        DBT_INTERNAL_SOURCE.{{ adapter.quote(name) }}{% if not loop.last %}, {% endif %}
        {%- endfor %})
    {%- endif -%}
    {%- endset -%}
    {{ return(dml) }}
{%- endmacro %}
