"""Right to erasure (`routerloop erase`, the `router_erasure` DAG's functions): a customer's ratings leave raw
and every relation derived from them, the CSAT marts drop them, the erasure is logged append-only under
the customer's pseudonym, a second run removes nothing, and a failed erasure changes nothing.

A small world of its own (12 hours, 40 decisions an hour): one customer is given two ratings in
different hours, one of them past retention (its raw customer id already nulled: only staging's
pseudonym still finds it), and a quarantined line carrying the customer's id.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import DEMO_START, fresh_database, pointed_at
from psycopg import sql

from routerloop import cli, db, erasure, privacy
from routerloop.build import build
from routerloop.config import reload_settings
from routerloop.landing import land
from routerloop.warehouse import locks
from routerloop.warehouse.migrations import migrate

HOURS = 12

pytestmark = pytest.mark.slow


def _csat_lines(landing: Path) -> list[tuple[Path, dict]]:
    return [(path, json.loads(line)) for path in sorted((landing / "csat_ratings").rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict], extra: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + extra)


def _plant_customer(landing: Path) -> dict:
    """Give the customer of a late rating (A) an earlier rating too (B), and a quarantined line."""
    lines = _csat_lines(landing)
    hours = sorted({path.parent for path, _ in lines})
    assert len(hours) >= 2, "the world has too few CSAT hours"
    late = [(p, r) for p, r in lines if p.parent == hours[-1]]
    early = [(p, r) for p, r in lines if p.parent == hours[0]]
    (a_path, a), (b_path, b) = late[0], early[0]
    customer = a["customerId"]
    records = [r for p, r in lines if p == b_path]
    _write(b_path, [{**r, "customerId": customer} if r["ratingId"] == b["ratingId"] else r for r in records])
    bad = {**a, "ratingId": "cs_ffffffffffffffff", "rating": 9}  # out of range: quarantined
    _write(a_path, [r for p, r in lines if p == a_path], extra=json.dumps(bad) + "\n")
    return {"customer_id": customer, "ratings": sorted([a["ratingId"], b["ratingId"]]),
            "emails": sorted({r["customerEmail"] for r in (a, b) if r.get("customerEmail")}),
            "late_hour": DEMO_START + timedelta(hours=int(a_path.parent.name[3:])),
            "teams": sorted({a["teamId"], b["teamId"]})}


@pytest.fixture(scope="module")
def world(database_url, tmp_path_factory):
    """Generated, planted, landed, built, then retention applied; yields (planted, url)."""
    from routerloop.reference import load as load_reference
    from routerloop.simulation import generate

    work = tmp_path_factory.mktemp("erasure")
    landing = work / "landing"
    generate(out=landing, start=DEMO_START, hours=HOURS, seed=5, decisions_per_hour=40, bad_rate=0.0)
    planted = _plant_customer(landing)
    with fresh_database(database_url, "erasure") as url, pointed_at(url, work), \
            pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERLOOP_BAD_LINE_LIMIT", "1")  # the planted bad line is one of a few lines
        reload_settings()
        load_reference(url=url)
        assert land(landing=landing, progress=False, url=url).ok
        built = build(full_refresh=True, url=url, quiet=True, unit_tests=False)
        assert built["ok"], built["failed"]
        with db.connect(url, autocommit=True) as conn:  # later, B's hour is past retention, A's is not
            privacy.retention(conn, now=planted["late_hour"] + timedelta(days=90), days=90)
        yield planted, url
    reload_settings()


def _relations(conn) -> list[tuple[str, str]]:
    return conn.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition"
        " and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%%'"
        " order by 1, 2").fetchall()


def _holding(conn, needles: list[str]) -> dict[str, int]:
    """Relation -> rows whose text form contains any of the needles, over every relation of every schema."""
    found = {}
    for schema, name in _relations(conn):
        rows = conn.execute(
            sql.SQL("select count(*) from {}.{} as t where t::text like any(%s)").format(
                sql.Identifier(schema), sql.Identifier(name)),
            ([f"%{n}%" for n in needles],)).fetchone()[0]
        if rows:
            found[f"{schema}.{name}"] = rows
    return found


def _csat_marts(conn) -> dict[str, dict[tuple, int]]:
    """Mart -> (as_of_date, window_start_date, team_id, agent_id or None) -> csat_responses."""
    return {mart: {tuple(key): n for *key, n in conn.execute(
        f"select as_of_date, window_start_date, team_id, {agent}, csat_responses from marts.{mart}_sla_csat_rolling")}
        for mart, agent in (("team", "null::text"), ("agent", "agent_id"))}


def test_erasure_removes_the_ratings_everywhere_rebuilds_the_marts_and_logs_it(world, capsys, monkeypatch):
    planted, url = world
    customer, ratings = planted["customer_id"], planted["ratings"]
    customer_hash = privacy.pseudonymize(customer)
    with db.connect(url, autocommit=True) as conn:
        staged = conn.execute(
            "select rating_id, team_id, agent_id, submitted_date from staging.stg_support__csat_ratings"
            " where customer_hash = %s order by 1", (customer_hash,)).fetchall()
        assert [r[0] for r in staged] == ratings
        # one of them is findable in raw only through staging's pseudonym (retention nulled its id)
        assert conn.execute("select count(*) from raw.csat_ratings where rating_id = any(%s)"
                            " and customer_id is null", (ratings,)).fetchone()[0] == 1
        assert conn.execute("select count(*) from raw.quarantine where position(%s in raw_bytes) > 0",
                            (customer.encode(),)).fetchone()[0] == 1
        assert {"raw.csat_ratings", "staging.stg_support__csat_ratings"} <= set(_holding(conn, [customer_hash, *ratings]))
        before = _csat_marts(conn)

    # a failure inside the transaction leaves everything as it was: nothing is half-erased
    def fail(*_):
        raise RuntimeError("injected")

    monkeypatch.setattr(erasure, "_empty_quarantined_lines", fail)
    with db.connect(url, autocommit=True) as conn, pytest.raises(RuntimeError, match="injected"):
        erasure.erase(conn, customer)
    monkeypatch.undo()
    with db.connect(url, autocommit=True) as conn:
        assert conn.execute("select count(*) from staging.stg_support__csat_ratings where customer_hash = %s",
                            (customer_hash,)).fetchone()[0] == 2
        assert conn.execute("select count(*) from audit.erasures").fetchone()[0] == 0

    assert cli.main(["erase", "--customer-id", f" {customer} ", "--requested-by", "dpo@example.com",
                     "--reason", "request 42", "--quiet"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{"):])
    removed = printed["erasure"]["rows_removed"]
    assert removed["raw.csat_ratings"] == 2 and removed["staging.stg_support__csat_ratings"] == 2
    assert removed["raw.quarantine"] == 1
    assert removed["intermediate.int_experiment_observations_unioned"] % 2 == 0  # csat_rating and csat_satisfied
    assert printed["rebuild"]["ok"] and printed["rebuild"]["models_built"] > 0
    assert customer not in out

    with db.connect(url, autocommit=True) as conn:
        # gone from every relation of every schema; the erasure log holds the pseudonym, the dedupe keys
        # the bare rating ids (so a re-delivery is never landed again)
        assert _holding(conn, [customer, customer_hash, *planted["emails"]]) == {"audit.erasures": 1}
        assert _holding(conn, ratings) == {"raw.csat_ratings_keys": 2}
        assert conn.execute("select count(*) from raw.quarantine where position(%s in raw_bytes) > 0"
                            " or message like %s", (customer.encode(), f"%{customer}%")).fetchone()[0] == 0
        # the CSAT marts lost exactly the erased ratings
        after = _csat_marts(conn)
        for mart, rows in before.items():
            assert after[mart].keys() == rows.keys()
            for (day, start, team, agent), n in rows.items():
                dropped = sum(1 for _, t, a, d in staged if t == team and agent in (None, a) and start <= d <= day)
                assert after[mart][day, start, team, agent] == n - dropped, (mart, day, start, team, agent)
            assert sum(rows.values()) - sum(after[mart].values()) >= 2
        # the log: pseudonym, counts, who, how, why; append-only
        row = conn.execute("select customer_hash, rows_removed, requested_by, requested_via, reason"
                           " from audit.erasures").fetchone()
        assert row == (customer_hash, removed, "dpo@example.com", "cli", "request 42")
        for statement in ("update audit.erasures set requested_by = 'someone else'", "delete from audit.erasures",
                          "truncate audit.erasures"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.CheckViolation):  # never a raw id in the log
            conn.execute("insert into audit.erasures (customer_hash, rows_removed, requested_by)"
                         " values (%s, '{}', 'me')", (customer,))

        # a second run removes nothing, and is logged too
        again = erasure.erase(conn, customer, requested_via="test")
        assert again.total == 0 and set(again.rows_removed) == set(removed)
        assert conn.execute("select count(*) from audit.erasures").fetchone()[0] == 2
    assert cli.main(["audit", "tail", "--kind", "erasure", "-n", "1"]) == 0
    assert customer_hash in capsys.readouterr().out


def test_an_unusable_customer_id_is_refused_before_anything_happens(capsys):
    assert cli.main(["erase", "--customer-id", "  "]) == 2
    assert "customer id is empty" in capsys.readouterr().err
    with pytest.raises(erasure.ErasureError, match="more than any id"):
        erasure.check_customer_id("c" * 300)


def test_erasures_wait_for_each_other_and_for_a_running_dbt_build(database_url):
    """The deletion holds ERASURE and waits for DBT_BUILD: a build that read raw before it could stage the
    ratings again, and two erasures never interleave."""
    with fresh_database(database_url, "erasure_locks") as url:
        with db.connect(url, autocommit=True) as holder:
            migrate(holder)
            locks.session_lock(holder, locks.DBT_BUILD)  # a build is running
            done: list = []

            def run(who):
                with db.connect(url, autocommit=True) as conn:
                    done.append(erasure.erase(conn, "cus_000001", requested_by=who))

            first = threading.Thread(target=run, args=("first",))
            first.start()
            _until(lambda: locks.waiters(holder, locks.DBT_BUILD))  # holding ERASURE, queued for the build
            second = threading.Thread(target=run, args=("second",))
            second.start()
            _until(lambda: locks.waiters(holder, locks.ERASURE))
            assert done == []
            locks.session_unlock(holder, locks.DBT_BUILD)
            first.join(60)
            second.join(60)
        assert [e.requested_by for e in done] == ["first", "second"]
        assert all(e.total == 0 for e in done)


def _until(condition, tries: int = 600) -> None:
    import time

    for _ in range(tries):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition never held")
