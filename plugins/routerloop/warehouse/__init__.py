"""The warehouse objects routerloop owns outside dbt: schemas raw, audit and router, their migrations,
and the one registry of advisory-lock keys."""
