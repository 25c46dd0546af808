"""PostgreSQL roles and what each may read or write (`routerloop db grant`); part of the warehouse package
because it creates roles and schemas (everything outside dbt that creates them lives here).

Three roles, named `<prefix>_<kind>` (Settings.role_prefix, default `routerloop`):

- `pipeline`: Airflow and dbt. Owns the schemas it builds (raw, staging, intermediate, marts, router,
  reference, udf) and their tables. In `audit` it may read and append, nothing else: the audit schema
  and its trail stay owned by the administrator who runs the migrations, because an owner could disable
  the append-only triggers and a schema owner can drop any table in it.
- `analyst`: SELECT on `marts` only (dbt's `grants` config keeps every rebuilt mart granted). Nothing
  in raw, staging, intermediate, reference or audit; the marts hold no personal data.
- `router`: SELECT on `router` only. Migration 6 created `routerloop_router` already: with the default
  prefix this is the same role, now able to log in.

Roles are cluster-wide and are created when missing, so granting is idempotent and concurrent callers
are safe. Passwords are not set here: an administrator sets them (`alter role ... password`) or the
server's pg_hba.conf decides how each role authenticates.
"""

from __future__ import annotations

from psycopg import errors, sql

from routerloop.config import settings

KINDS = ("pipeline", "analyst", "router")
# Schemas the pipeline owns: created by migrations (raw, router) or by dbt (the others).
PIPELINE_SCHEMAS = ("raw", "staging", "intermediate", "marts", "router", "reference", "udf")
# audit tables the pipeline updates in place: dbt's bookkeeping, not the audit trail.
PIPELINE_BOOKKEEPING = ("audit.dbt_model_watermarks",)


def role_names(prefix: str | None = None) -> dict[str, str]:
    prefix = prefix or settings().role_prefix
    return {kind: f"{prefix}_{kind}" for kind in KINDS}


def ensure_roles(conn, prefix: str | None = None) -> dict[str, str]:
    """Create the roles that are missing (LOGIN, no password); return kind -> role name."""
    roles = role_names(prefix)
    for name in roles.values():
        if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            continue
        try:
            with conn.transaction():
                conn.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
        except (errors.DuplicateObject, errors.UniqueViolation):  # created meanwhile by another database
            pass
    return roles


def grant(conn, prefix: str | None = None) -> dict[str, str]:
    """Create the roles if missing and grant each exactly its access in this database; idempotent."""
    from routerloop.warehouse.migrations import migrate

    migrate(conn)
    roles = ensure_roles(conn, prefix)
    ident = {kind: sql.Identifier(name) for kind, name in roles.items()}
    pipeline, analyst, router = ident["pipeline"], ident["analyst"], ident["router"]
    with conn.transaction():
        conn.execute(sql.SQL("alter role {} login").format(router))  # migration 6 made it nologin
        for schema in PIPELINE_SCHEMAS:
            s = sql.Identifier(schema)
            conn.execute(sql.SQL("create schema if not exists {}").format(s))
            conn.execute(sql.SQL("alter schema {} owner to {}").format(s, pipeline))
            for relation, kind in conn.execute(
                "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')"
                " and not c.relispartition"
                # a sequence of an identity or serial column follows its table
                " and (c.relkind <> 'S' or not exists (select from pg_depend d"
                "      where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')))",
                (schema,),
            ).fetchall():
                what = {"v": "view", "m": "materialized view", "S": "sequence", "f": "foreign table"}.get(kind, "table")
                conn.execute(sql.SQL("alter {} {}.{} owner to {}").format(
                    sql.SQL(what), s, sql.Identifier(relation), pipeline))
            for (function,) in conn.execute(
                "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = %s",
                (schema,),
            ).fetchall():
                conn.execute(sql.SQL("alter routine {} owner to {}").format(sql.SQL(function), pipeline))
        # Partitions keep the owner they were created with: hand them over too.
        for (partition,) in conn.execute(
            "select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relispartition",
            (list(PIPELINE_SCHEMAS),),
        ).fetchall():
            conn.execute(sql.SQL("alter table {} owner to {}").format(sql.SQL(partition), pipeline))
        # audit: read and append; the bookkeeping tables also updated; never update/delete the trail.
        conn.execute(sql.SQL("grant usage on schema audit to {}").format(pipeline))
        conn.execute(sql.SQL("grant select, insert on all tables in schema audit to {}").format(pipeline))
        conn.execute(sql.SQL("grant usage on all sequences in schema audit to {}").format(pipeline))
        for table in PIPELINE_BOOKKEEPING:
            conn.execute(sql.SQL("grant update on {} to {}").format(sql.SQL(table), pipeline))
        # The analyst: marts only. New marts tables get their grant from dbt (+grants in dbt_project.yml);
        # existing ones here, so granting a warehouse built before the role existed is enough.
        conn.execute(sql.SQL("grant usage on schema marts to {}").format(analyst))
        conn.execute(sql.SQL("grant select on all tables in schema marts to {}").format(analyst))
        conn.execute(sql.SQL("alter default privileges for role {} in schema marts grant select on tables to {}")
                     .format(pipeline, analyst))
        # The router: router only (read).
        conn.execute(sql.SQL("grant usage on schema router to {}").format(router))
        conn.execute(sql.SQL("grant select on all tables in schema router to {}").format(router))
        conn.execute(sql.SQL("alter default privileges for role {} in schema router grant select on tables to {}")
                     .format(pipeline, router))
        # Nothing through PUBLIC: schema public's default CREATE (PostgreSQL < 15) is not theirs either.
        for role in (analyst, router):
            conn.execute(sql.SQL("revoke create on schema public from {}").format(role))
    if not conn.autocommit:
        conn.commit()
    return roles


def drop_roles(conn, prefix: str) -> None:
    """Drop the roles of `prefix` (tests: a session's own prefix). Their objects in this database are
    dropped and privileges revoked first; roles holding privileges in other databases cannot be dropped."""
    for name in role_names(prefix).values():
        if not conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            continue
        conn.execute(sql.SQL("drop owned by {} cascade").format(sql.Identifier(name)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))
