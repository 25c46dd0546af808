{#-
    Anonymization before anything leaves raw (README, "Security and privacy").

    pseudonymize(column): HMAC-SHA256 of a text id, in hex, keyed with the routerloop key. PostgreSQL's
    built-in sha256() with the RFC 2104 construction, sha256(K ^ opad || sha256(K ^ ipad || m)): pgcrypto
    is not installed everywhere routerloop runs. The padded keys come from the session settings
    routerloop.hmac_ipad / routerloop.hmac_opad, set in PGOPTIONS by routerloop (routerloop.privacy),
    never from SQL text: compiled SQL and dbt's log are written to disk.
-#}
{% macro pseudonymize(column) -%}
    encode(
        sha256(
            decode(current_setting('routerloop.hmac_opad'), 'hex')
            || sha256(decode(current_setting('routerloop.hmac_ipad'), 'hex') || convert_to({{ column }}, 'UTF8'))
        ),
        'hex'
    )
{%- endmacro %}


{#- on-run-start: refuse to run without the key, rather than fail in the first staging model. -#}
{% macro require_pseudonymization_key() %}
do $$
begin
    if coalesce(current_setting('routerloop.hmac_ipad', true), '') !~ '^[0-9a-f]{128}$'
        or coalesce(current_setting('routerloop.hmac_opad', true), '') !~ '^[0-9a-f]{128}$' then
        raise exception 'routerloop.hmac_ipad / routerloop.hmac_opad are not set: run dbt through routerloop'
            ' (routerloop build, the DAGs), which derives them from ROUTERLOOP_HMAC_KEY or the local key'
            ' and passes them in PGOPTIONS';
    end if;
end
$$
{% endmacro %}


{#-
    The personal values free text may hold, in the order they are replaced, with their placeholders.
    PostgreSQL regular expressions (ARE), matched case-insensitively. An email first (its digits are no
    phone), then account-like ids (a known prefix and at least 5 digits, e.g. ACC-04217890, cus_000123,
    account #123456), then phone numbers: international (+ and a country code), national (a leading 0)
    or North-American (415-555-0123, (415) 555-0123). What they do not catch: README, "Security and
    privacy".
-#}
{% macro personal_text_patterns() %}
    {%- set email -%}
        [a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}
    {%- endset -%}
    {%- set account_id -%}
        \m(acc|acct|account|cus|cust|customer)[-_ ]?(no\.? ?|nr\.? ?|number ?|id ?)?[-_#: ]{0,2}[0-9]{5,}\M
    {%- endset -%}
    {%- set phone -%}
        (\+[0-9]{1,3}([ .-]?(\([0-9]{1,4}\)|[0-9]{1,4})){2,5}|\m0[0-9]{1,4}([ .-]?[0-9]{2,4}){2,4}\M|(\([0-9]{3}\) ?|\m[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}\M)
    {%- endset -%}
    {{- return([('[EMAIL]', email), ('[ACCOUNT_ID]', account_id), ('[PHONE]', phone)]) -}}
{% endmacro %}


{#- `column` with every personal value replaced by its typed placeholder (after the patterns before it). -#}
{% macro scrub_personal_text(column, upto=none) %}
    {%- set patterns = personal_text_patterns() -%}
    {%- set ns = namespace(expression=column) -%}
    {%- for placeholder, pattern in patterns[:upto] -%}
        {%- set ns.expression = "regexp_replace(" ~ ns.expression ~ ", '" ~ pattern ~ "', '" ~ placeholder ~ "', 'gi')" -%}
    {%- endfor -%}
    {{- ns.expression -}}
{% endmacro %}


{#- How many personal values scrub_personal_text(column) replaces (null for a null column). -#}
{% macro personal_text_redactions(column) %}
    {%- set patterns = personal_text_patterns() -%}
    {%- for placeholder, pattern in patterns -%}
        regexp_count({{ scrub_personal_text(column, loop.index0) }}, '{{ pattern }}', 1, 'i')
        {%- if not loop.last %} + {% endif -%}
    {%- endfor -%}
{% endmacro %}
