{#- Thin stand-in: the reference data as loaded (replaced by the reference schema's loader, issue 11 §1). -#}
{{ config(materialized='view') }}

select * from {{ ref('experiments') }}
