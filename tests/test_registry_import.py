"""``flask registry import``: snapshots go through the same rules as live look-ups.

The main tests run on SQLite and on PostgreSQL (``pg_app``): the bulk SQL is portable.
All data is fictional.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from directory.extensions import db
from directory.listings.models import Clinic, Listing
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.verification import verdict
from directory.search.models import SearchOutbox
from directory.util.clock import utcnow

HEADER = ["Title", "Surname", "Fullname", "Registration", "City", "Postal Code", "Category",
          "Status"]  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request):
    """The app on SQLite, then on PostgreSQL."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def person(number: str, status: str = "ACTIVE", category: str = "INDEPENDENT PRACTICE",
           surname: str | None = None, city: str = "CAPE TOWN") -> list[str]:  # fmt: skip
    """One fictional register row."""
    return ["DR", surname or f"FICTIONAL-{number}", "TEST PERSON", number, city, "8001",
            category, status]  # fmt: skip


def write_csv(tmp_path, rows: list[list[str]], name: str = "snapshot.csv") -> str:
    lines = [",".join(HEADER)] + [",".join(row) for row in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run_import(app, path: str, *args: str):
    result = app.test_cli_runner().invoke(args=["registry", "import", path, "--json", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, lines


def load(number: str) -> Practitioner | None:
    db.session.expire_all()
    return db.session.scalar(select(Practitioner).where(Practitioner.registration_number == number))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_clean_snapshot_imports_every_row_and_exits_0(any_app, tmp_path):
    rows = [
        person("MP 0000001"),
        person("MP0000002", "ACTIVE"),
        person("MP0000002", "INACTIVE", "PUBLIC SERVICE"),
        person("DP45", "SUSPENDED"),
        person("PS0000301", "ERASED"),
    ]
    result, lines = run_import(any_app, write_csv(tmp_path, rows))
    assert result.exit_code == 0, result.output
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert summary["rows_read"] == summary["rows_imported"] == 5
    assert summary["rows_rejected"] == 0 and summary["registrations"] == 4
    assert summary["created"] == 4
    with any_app.app_context():
        assert count(Practitioner) == 4 and count(VerificationCheck) == 4
        assert count(StatusEvent) == 0  # a first sighting is not a change
        two = load("MP0000002")
        assert [(c.category, c.status) for c in two.categories] == [
            ("INDEPENDENT PRACTICE", "active"),
            ("PUBLIC SERVICE", "inactive"),
        ]
        assert two.status == "active" and two.raw_status == "ACTIVE / INACTIVE"
        assert verdict(two).verified  # as of now, active
        assert load("DP0000045").status == "suspended"
        assert not verdict(load("PS0000301")).verified
        check = db.session.scalar(select(VerificationCheck))
        assert check.source == "snapshot:snapshot.csv" and check.outcome == "ok"


def test_bad_rows_are_reported_with_line_and_reason_and_skipped(any_app, tmp_path):
    rows = [
        person("MP0000001"),  # line 2: fine
        person("MPO012345"),  # 3: letter O
        person("12345"),  # 4: no prefix
        ["DR", "", "NO SURNAME", "MP0000004", "DURBAN", "4001", "INTERN", "ACTIVE"],  # 5
        person("MP0000005", "ACTIVE"),  # 6: contradicted by 8 (same category, other status)
        person("MP0000006"),  # 7: fine
        person("MP0000005", "SUSPENDED"),  # 8
        person("MP0000009", surname="FICTIONAL-ONE"),  # 9: contradicted by 10 (other names)
        person("MP0000009", "INACTIVE", "INTERN", surname="FICTIONAL-OTHER"),  # 10
        ["DR", "FICTIONAL-X", "SHORT", "MP0000011"],  # 11: too few values
    ]
    result, lines = run_import(any_app, write_csv(tmp_path, rows))
    assert result.exit_code == 1, result.output
    rejected = {line["line"]: line for line in lines if line["type"] == "rejected"}
    assert sorted(rejected) == [3, 4, 5, 11]  # only the rows that cannot be read
    assert "letter O" in rejected[3]["reason"] and "MP0012345" in rejected[3]["reason"]
    assert "no register prefix" in rejected[4]["reason"]
    assert rejected[5]["reason"] == "missing required value(s): Surname"
    assert rejected[5]["registration_number"] == "MP0000004"
    assert "has 4 values" in rejected[11]["reason"]
    warnings = {line["line"]: line["reason"] for line in lines if line["type"] == "warning"}
    assert sorted(warnings) == [8, 10]
    assert "another status than line 6" in warnings[8]
    assert "other names than line 9" in warnings[10]
    summary = lines[-1]
    assert (summary["rows_read"], summary["rows_imported"], summary["rows_rejected"]) == (10, 6, 4)
    with any_app.app_context():
        stored = db.session.scalars(select(Practitioner.registration_number)).all()
        assert sorted(stored) == ["MP0000001", "MP0000005", "MP0000006", "MP0000009"]
        assert load("MP0000005").status == "suspended"  # adverse wins, as it would live


def test_human_output_names_line_number_and_reason(app, tmp_path):
    path = write_csv(tmp_path, [person("MP0000001"), person("MP12345678")])
    result = app.test_cli_runner().invoke(args=["registry", "import", path])
    assert result.exit_code == 1
    assert "line 3: rejected: bad registration number" in result.stdout
    assert "2 rows read, 1 imported, 1 rejected" in result.stdout


def test_an_unknown_status_is_imported_as_unknown_with_a_warning(any_app, tmp_path):
    rows = [person("MP0000001", "PROVISIONALLY ACTIVE PENDING REVIEW"), person("MP0000002")]
    result, lines = run_import(any_app, write_csv(tmp_path, rows))
    assert result.exit_code == 0, result.output  # nothing rejected: a warning only
    warnings = [line for line in lines if line["type"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["line"] == 2
    assert "PROVISIONALLY ACTIVE PENDING REVIEW" in warnings[0]["reason"]
    assert lines[-1]["warnings"] == 1 and lines[-1]["rows_imported"] == 2
    with any_app.app_context():
        p = load("MP0000001")
        assert p.status == "unknown"
        assert p.raw_status == "PROVISIONALLY ACTIVE PENDING REVIEW"  # nothing lost
        assert not verdict(p).verified


def test_an_exact_repeat_is_imported_once_with_a_warning(app, tmp_path):
    rows = [person("MP0000001"), person("MP0000002"), person("MP0000001")]
    result, lines = run_import(app, write_csv(tmp_path, rows))
    assert result.exit_code == 0
    assert [(w["line"], w["reason"]) for w in lines if w["type"] == "warning"] == [
        (4, "repeats line 2 exactly: imported once")
    ]
    with app.app_context():
        assert len(load("MP0000001").categories) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"Name,Number\nFICTIONAL,MP0000001\n", "lacks the column(s)"),
        (",".join(HEADER).encode() + b"\n", "no data rows"),
    ],
)
def test_a_file_that_is_not_a_snapshot_exits_2_and_changes_nothing(app, tmp_path, content, message):
    path = tmp_path / "not-a-snapshot.csv"
    path.write_bytes(content)
    result, _ = run_import(app, str(path))
    assert result.exit_code == 2
    assert message in result.stderr and "Nothing was imported" in result.stderr
    assert "Traceback" not in result.output
    with app.app_context():
        assert count(Practitioner) == 0 and count(VerificationCheck) == 0


def test_an_undecodable_byte_at_the_end_changes_nothing(any_app, tmp_path):
    good = "\n".join(",".join(person(f"MP{i:07d}")) for i in range(1, 5001))
    path = tmp_path / "snapshot.csv"
    path.write_bytes(
        (",".join(HEADER) + "\n" + good + "\n").encode() + b"DR,M\xfcLLER,X,MP9,D,1,I,ACTIVE\n"
    )
    result, _ = run_import(any_app, str(path), "--batch-size", "100")
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr
    with any_app.app_context():
        assert count(Practitioner) == 0  # the first 5,000 good rows were not written either


def test_a_missing_file_and_a_bad_as_of_are_usage_errors(app, tmp_path):
    result, _ = run_import(app, str(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "no such file" in result.stderr
    path = write_csv(tmp_path, [person("MP0000001")])
    for bad in ("yesterday", "2024-13-01", (utcnow() + timedelta(days=2)).date().isoformat()):
        result, _ = run_import(app, path, "--as-of", bad)
        assert result.exit_code == 2, bad
        assert "Traceback" not in result.output
    with app.app_context():
        assert count(Practitioner) == 0


def test_an_old_snapshot_never_looks_freshly_verified(any_app, tmp_path):
    as_of = (utcnow() - timedelta(days=60)).date()
    result, lines = run_import(
        any_app, write_csv(tmp_path, [person("MP0000001")]), "--as-of", as_of.isoformat()
    )
    assert result.exit_code == 0
    assert lines[-1]["as_of"].startswith(as_of.isoformat())
    with any_app.app_context():
        p = load("MP0000001")
        assert p.status == "active"
        assert p.verified_at == datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
        judged = verdict(p)
        assert not judged.verified and judged.tone == "stale"
        check = db.session.scalar(select(VerificationCheck))
        assert check.checked_at == p.verified_at  # the history says when the register said it


def test_an_old_snapshot_after_a_newer_live_check_changes_nothing(any_app, tmp_path):
    runner = any_app.test_cli_runner()
    live = runner.invoke(args=["registry", "verify", "MP0000101", "--json"])
    assert live.exit_code == 0, live.output
    with any_app.app_context():
        before = load("MP0000101")
        state = (before.status, before.verified_at, before.status_as_of, before.raw_status)
        assert state[0] == "active"
    old = write_csv(
        tmp_path,
        [person("MP0000101", "SUSPENDED", surname="FICTIONAL-OLD-NAME", city="DURBAN")],
    )
    result, lines = run_import(any_app, old, "--as-of", "2024-01-01")
    assert result.exit_code == 0
    assert lines[-1]["ignored_stale"] == 1 and lines[-1]["status_changed"] == 0
    with any_app.app_context():
        after = load("MP0000101")
        assert (after.status, after.verified_at, after.status_as_of, after.raw_status) == state
        assert after.surname == "FICTIONAL-NDLOVU" and after.city == "JOHANNESBURG"
        assert [c.status for c in after.categories] == ["active"]
        assert verdict(after).verified
        assert count(StatusEvent) == 0
        effects = db.session.scalars(
            select(VerificationCheck.effect).order_by(VerificationCheck.id)
        ).all()
        assert effects == ["created", "ignored_stale"]  # recorded, changed nothing


def test_a_newer_snapshot_changes_status_and_emits_one_event(any_app, tmp_path):
    first = write_csv(tmp_path, [person("MP0000001")], "first.csv")
    assert run_import(any_app, first, "--as-of", "2024-01-01")[0].exit_code == 0
    second = write_csv(
        tmp_path,
        [person("MP0000001", "ACTIVE"), person("MP0000001", "SUSPENDED", "PUBLIC SERVICE")],
        "second.csv",
    )
    result, lines = run_import(any_app, second, "--as-of", "2024-02-01")
    assert result.exit_code == 0
    assert lines[-1]["status_changed"] == 1 and lines[-1]["status_events"] == 1
    with any_app.app_context():
        p = load("MP0000001")
        assert p.status == "suspended"
        assert p.status_changed_at == datetime(2024, 2, 1, tzinfo=UTC)
        assert sorted(c.category for c in p.categories) == [
            "INDEPENDENT PRACTICE",
            "PUBLIC SERVICE",
        ]
        event = db.session.scalar(select(StatusEvent))
        assert (event.from_status, event.to_status) == ("active", "suspended")
        assert event.source == "snapshot:second.csv"
        assert event.occurred_at == datetime(2024, 2, 1, tzinfo=UTC)


def test_re_importing_the_same_snapshot_is_idempotent(any_app, tmp_path):
    rows = [person(f"MP{i:07d}") for i in range(1, 40)]
    rows += [person("MP0000003", "INACTIVE", "INTERN"), person("DP0000001", "ERASED")]
    path = write_csv(tmp_path, rows)

    def state():
        db.session.expire_all()
        people = db.session.scalars(select(Practitioner).order_by(Practitioner.id)).all()
        return [
            (p.id, p.registration_number, p.status, p.verified_at, p.status_as_of, p.raw_status,
             p.surname, [(c.category, c.status, c.raw_status) for c in p.categories])
            for p in people
        ]  # fmt: skip

    first, _ = run_import(any_app, path, "--as-of", "2024-05-01", "--batch-size", "7")
    assert first.exit_code == 0
    with any_app.app_context():
        before = state()
    second, lines = run_import(any_app, path, "--as-of", "2024-05-01", "--batch-size", "7")
    assert second.exit_code == 0
    assert lines[-1]["unchanged"] == 40 and lines[-1]["created"] == 0
    with any_app.app_context():
        assert state() == before
        assert count(StatusEvent) == 0
        assert count(VerificationCheck) == 80  # one history row per number per import


def test_several_categories_anywhere_in_the_file_make_one_registration(any_app, tmp_path):
    rows = [person("MP0000001", "ACTIVE")]
    rows += [person(f"MP{i:07d}") for i in range(2, 30)]  # several batches in between
    rows += [person("MP0000001", "INACTIVE", "INTERN")]
    rows += [person("MP0000002", "SUSPENDED", "PUBLIC SERVICE")]
    result, lines = run_import(any_app, write_csv(tmp_path, rows), "--batch-size", "5")
    assert result.exit_code == 0, result.output
    assert lines[-1]["registrations"] == 29 and lines[-1]["rows_imported"] == 31
    with any_app.app_context():
        one, two = load("MP0000001"), load("MP0000002")
        assert [(c.category, c.status) for c in one.categories] == [
            ("INDEPENDENT PRACTICE", "active"),
            ("INTERN", "inactive"),
        ]
        assert one.status == "active"
        assert two.status == "suspended"  # adverse anywhere wins
        assert count(VerificationCheck) == 29  # one answer per number, not per row


def test_json_lines_snapshots_import_the_same_way(any_app, tmp_path):
    records = [dict(zip(HEADER, person("PS301", "ACTIVE"), strict=True))]
    records.append(dict(zip(HEADER, person("PS301", "INACTIVE", "INTERN"), strict=True)))
    records.append({"registration": "OT12", "status": "ACTIVE"})  # missing keys
    path = tmp_path / "snapshot.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result, lines = run_import(any_app, str(path))
    assert result.exit_code == 1
    rejected = [line for line in lines if line["type"] == "rejected"]
    assert rejected[0]["line"] == 3 and "missing key(s)" in rejected[0]["reason"]
    with any_app.app_context():
        assert len(load("PS0000301").categories) == 2


def test_every_json_line_parses_and_the_summary_is_last(app, tmp_path):
    path = write_csv(tmp_path, [person("MP0000001"), person("BAD"), person("MP2", "ODD")])
    result, lines = run_import(app, path)
    assert result.exit_code == 1
    assert [line["type"] for line in lines] == ["rejected", "warning", "summary"]
    assert all({"line", "reason", "registration_number"} <= set(line) for line in lines[:-1])


def test_updated_listed_practitioners_are_queued_for_the_search_index(app, tmp_path):
    path = write_csv(tmp_path, [person("MP0000001"), person("MP0000002")], "a.csv")
    assert run_import(app, path, "--as-of", "2024-01-01")[0].exit_code == 0
    with app.app_context():
        clinic = Clinic(slug="fictional-clinic", name="Fictional Clinic", city="Cape Town",
                        province="Western Cape")  # fmt: skip
        db.session.add(clinic)
        db.session.flush()
        listed_id = load("MP0000001").id
        db.session.add(Listing(practitioner_id=listed_id, clinic_id=clinic.id))
        db.session.commit()
        queued_before = count(SearchOutbox)
    path = write_csv(
        tmp_path, [person("MP0000001", "SUSPENDED"), person("MP0000002", "SUSPENDED")], "b.csv"
    )
    result, _ = run_import(app, path, "--as-of", "2024-02-01")
    assert result.exit_code == 0
    with app.app_context():
        new_rows = db.session.scalars(
            select(SearchOutbox.practitioner_id).order_by(SearchOutbox.id).offset(queued_before)
        ).all()
        assert new_rows == [listed_id]  # the unlisted one is not in the index


def test_worker_processes_import_the_same_as_one_process(any_app, tmp_path):
    rows = [person(f"MP{i:07d}", "ACTIVE" if i % 7 else "SUSPENDED") for i in range(1, 301)]
    rows += [person(f"MP{i:07d}", "INACTIVE", "INTERN") for i in range(1, 301, 10)]  # scattered
    rows.insert(50, person("BAD NUMBER"))
    path = write_csv(tmp_path, rows)
    result, lines = run_import(any_app, path, "--workers", "2", "--batch-size", "25")
    assert result.exit_code == 1, result.output
    summary = lines[-1]
    assert (summary["registrations"], summary["rows_imported"], summary["rows_rejected"]) == (
        300,
        330,
        1,
    )
    assert summary["created"] == 300
    with any_app.app_context():
        assert count(Practitioner) == 300 and count(VerificationCheck) == 300
        assert count(RegistrationCategory) == 330
        assert load("MP0000007").status == "suspended"
        assert [c.category for c in load("MP0000011").categories] == [
            "INDEPENDENT PRACTICE",
            "INTERN",
        ]
    again, lines = run_import(any_app, path, "--workers", "2", "--batch-size", "25")
    assert again.exit_code == 1
    assert lines[-1]["unchanged"] == 300 and lines[-1]["created"] == 0
    with any_app.app_context():
        assert count(RegistrationCategory) == 330 and count(StatusEvent) == 0


def test_a_live_check_written_during_a_batch_is_not_overwritten(any_app, tmp_path, monkeypatch):
    """The rules run outside the write transaction; a check another writer records in that
    gap (a live verify, the recheck job) is seen, and the batch decides again on it."""
    from sqlalchemy.orm import Session

    from directory.registry.policy import RegistryPolicy
    from directory.registry.recording import BatchWriter, record_check
    from importers.sources.hpcsa import HpcsaClient

    first = write_csv(tmp_path, [person("MP0000101")], "first.csv")
    assert run_import(any_app, first, "--as-of", "2024-01-01")[0].exit_code == 0
    begin_write = BatchWriter._begin_write

    def live_check_first(self):
        with Session(db.engine) as other, HpcsaClient.from_config(any_app.config) as source:
            practitioner = other.scalar(
                select(Practitioner).where(Practitioner.registration_number == "MP0000101")
            )
            policy = RegistryPolicy.from_config(any_app.config)
            record_check(other, practitioner, source.lookup("MP0000101"), policy)
            other.commit()
        begin_write(self)

    monkeypatch.setattr(BatchWriter, "_begin_write", live_check_first)
    newer = write_csv(tmp_path, [person("MP0000101", "SUSPENDED")], "newer.csv")
    result, lines = run_import(any_app, newer, "--as-of", "2024-06-01")
    assert result.exit_code == 0, result.output
    assert lines[-1]["ignored_stale"] == 1  # the live answer (now) is newer than June 2024
    with any_app.app_context():
        p = load("MP0000101")
        assert p.status == "active" and p.status_as_of > datetime(2025, 1, 1, tzinfo=UTC)
        assert count(StatusEvent) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_failure_mid_import_keeps_committed_batches_and_says_so(
    app, tmp_path, monkeypatch, workers
):
    from sqlalchemy.exc import OperationalError

    from directory.registry.recording import BatchWriter

    write = BatchWriter._write

    def fail_on_a_late_batch(self, planned, now):
        if any(item.result.registration_number == "MP0000040" for item in planned):
            raise OperationalError("INSERT ...", {}, Exception("disk I/O error (fictional)"))
        return write(self, planned, now)

    monkeypatch.setattr(BatchWriter, "_write", fail_on_a_late_batch)
    path = write_csv(tmp_path, [person(f"MP{i:07d}") for i in range(1, 51)])
    result, _ = run_import(app, path, "--batch-size", "10", "--workers", workers)
    assert result.exit_code == 1
    assert "import stopped" in result.stderr and "disk I/O error" in result.stderr
    assert "re-running the import is safe" in result.stderr
    assert "Traceback" not in result.output
    with app.app_context():
        stored = count(Practitioner)
        assert 10 <= stored < 50 and stored % 10 == 0  # whole batches, never half of one


def _practitioner_page_badge(app, number: str) -> tuple[str, str]:
    """(badge colour, data-verified) of the practitioner's public page."""
    import re

    page = app.test_client().get(f"/practitioners/{number}")
    assert page.status_code == 200
    match = re.search(r'class="badge badge--(\w+)[^"]*" data-verified="(\w+)"', page.text)
    assert match, "no badge on the page"
    return match.group(1), match.group(2)


@pytest.mark.parametrize("file_age", [timedelta(0), timedelta(days=30)])
def test_an_undated_old_export_never_lifts_a_newer_live_suspension(
    any_app, tmp_path, fake_iregister, file_age
):
    """Issue 9, hole 1: verify a number the register answers SUSPENDED for, then import an
    old export listing it Active without --as-of. Whatever the file's modification time
    (a fresh copy of an old export, or the export's own), nothing changes."""
    import os

    fake_iregister.register.set_status("MP0000101", "SUSPENDED")
    live = any_app.test_cli_runner().invoke(args=["registry", "verify", "MP0000101", "--json"])
    assert live.exit_code == 0, live.output
    with any_app.app_context():
        before = load("MP0000101")
        state = (before.status, before.verified_at, before.status_as_of, before.raw_status)
        assert state[0] == "suspended"
    old = write_csv(tmp_path, [person("MP0000101", "ACTIVE"), person("MP0000777", "ACTIVE")])
    stamp = (utcnow() - file_age).timestamp()
    os.utime(old, (stamp, stamp))
    result, lines = run_import(any_app, old)
    assert result.exit_code == 0, result.output
    summary = lines[-1]
    assert summary["status_changed"] == 0 and summary["status_events"] == 0
    assert summary["ignored_stale"] == 1 and summary["created"] == 1  # a new one is added
    with any_app.app_context():
        after = load("MP0000101")
        assert (after.status, after.verified_at, after.status_as_of, after.raw_status) == state
        assert [c.status for c in after.categories] == ["suspended"]
        assert not verdict(after).verified
        assert count(StatusEvent) == 0
        effects = db.session.scalars(
            select(VerificationCheck.effect)
            .join(Practitioner)
            .where(Practitioner.registration_number == "MP0000101")
            .order_by(VerificationCheck.id)
        ).all()
        assert effects == ["created", "ignored_stale"]  # recorded, changed nothing
    colour, verified = _practitioner_page_badge(any_app, "MP0000101")
    assert colour != "green" and verified == "false"
    assert summary["as_of_from"] == "file modification time"
    assert abs(datetime.fromisoformat(summary["as_of"]).timestamp() - stamp) < 1


def test_an_undated_fresh_copy_of_an_old_export_never_turns_a_stale_registration_green(
    any_app, tmp_path, fake_iregister
):
    """Issue 9, hole 1, the green side: an active registration last confirmed 40 days ago
    (amber) is listed Active in an undated file copied today: it stays amber, never
    "last confirmed today"."""
    assert any_app.test_cli_runner().invoke(args=["registry", "verify", "MP0000101"]).exit_code == 0
    old = utcnow() - timedelta(days=40)
    with any_app.app_context():  # the register has not been reached since
        db.session.execute(
            update(Practitioner)
            .where(Practitioner.registration_number == "MP0000101")
            .values(verified_at=old, status_as_of=old, last_answer_at=old, last_checked_at=old)
        )
        db.session.commit()
        assert not verdict(load("MP0000101")).verified
    copied = write_csv(tmp_path, [person("MP0000101", "ACTIVE")])  # modified: now
    result, lines = run_import(any_app, copied)
    assert result.exit_code == 0, result.output
    assert lines[-1]["unchanged"] == 1
    with any_app.app_context():
        after = load("MP0000101")
        assert abs((after.verified_at - old).total_seconds()) < 1
        assert verdict(after).tone == "stale"
    colour, verified = _practitioner_page_badge(any_app, "MP0000101")
    assert colour != "green" and verified == "false"


def test_an_undated_export_still_records_adverse_news_and_confirms_agreement(
    any_app, tmp_path, fake_iregister
):
    runner = any_app.test_cli_runner()
    assert runner.invoke(args=["registry", "verify", "MP0000101", "MP0000103"]).exit_code == 0
    with any_app.app_context():
        assert load("MP0000101").status == "active"
        assert load("MP0000103").status == "suspended"
        confirmed_before = load("MP0000103").verified_at
    path = write_csv(
        tmp_path,
        [person("MP0000101", "SUSPENDED"), person("MP0000103", "SUSPENDED")],
    )
    result, lines = run_import(any_app, path)
    assert result.exit_code == 0, result.output
    assert lines[-1]["status_changed"] == 1 and lines[-1]["unchanged"] == 1
    with any_app.app_context():
        assert load("MP0000101").status == "suspended"
        agreed = load("MP0000103")
        assert agreed.status == "suspended" and agreed.verified_at >= confirmed_before
        (event,) = db.session.scalars(select(StatusEvent)).all()
        assert (event.from_status, event.to_status) == ("active", "suspended")


def test_a_dated_export_older_than_a_live_suspension_never_lifts_it(
    any_app, tmp_path, fake_iregister
):
    """The stale rule: with --as-of before the live answer, an Active row changes nothing."""
    fake_iregister.register.set_status("MP0000101", "SUSPENDED")
    live = any_app.test_cli_runner().invoke(args=["registry", "verify", "MP0000101"])
    assert live.exit_code == 0, live.output
    as_of = (utcnow() - timedelta(days=1)).date().isoformat()
    path = write_csv(tmp_path, [person("MP0000101")])
    result, lines = run_import(any_app, path, "--as-of", as_of)
    assert result.exit_code == 0, result.output
    assert lines[-1]["as_of_from"] == "--as-of" and lines[-1]["ignored_stale"] == 1
    with any_app.app_context():
        assert load("MP0000101").status == "suspended" and count(StatusEvent) == 0
    assert _practitioner_page_badge(any_app, "MP0000101") == ("red", "false")


def test_the_human_summary_says_which_date_an_undated_snapshot_counts_as(app, tmp_path):
    path = write_csv(tmp_path, [person("MP0000001")])
    result = app.test_cli_runner().invoke(args=["registry", "import", path])
    assert result.exit_code == 0, result.output
    assert "the file's modification time, as no --as-of was given" in result.stdout
    dated = app.test_cli_runner().invoke(args=["registry", "import", path, "--as-of", "2024-01-01"])
    assert "modification time" not in dated.stdout


def test_contradictory_rows_for_one_number_combine_as_a_live_answer_would(
    any_app, tmp_path, fake_iregister
):
    """Issue 9, hole 2: "Independent Practice, Active" and "Independent Practice, Suspended"
    for one number. The rows used to be rejected whole, leaving the practitioner verified
    with no history of what the register said. They are one answer, as they would be live."""
    same_rows = [("INDEPENDENT PRACTICE", "ACTIVE"), ("INDEPENDENT PRACTICE", "SUSPENDED")]
    fake_iregister.register.add("MP0000201", "FICTIONAL-LIVE", "TEST PERSON", categories=same_rows)
    runner = any_app.test_cli_runner()
    assert runner.invoke(args=["registry", "verify", "MP0000101", "MP0000201"]).exit_code == 0
    with any_app.app_context():
        assert verdict(load("MP0000101")).verified
    path = write_csv(
        tmp_path,
        [
            person("MP0000101", "ACTIVE"),  # line 2
            person("MP0000002"),  # line 3
            person("MP0000101", "SUSPENDED"),  # line 4
        ],
    )
    result, lines = run_import(any_app, path)
    assert result.exit_code == 0, result.output  # nothing rejected
    (warning,) = [line for line in lines if line["type"] == "warning"]
    assert warning["line"] == 4 and warning["registration_number"] == "MP0000101"
    assert "line 2" in warning["reason"]
    summary = lines[-1]
    assert summary["rows_imported"] == 3 and summary["status_changed"] == 1
    with any_app.app_context():
        imported, live = load("MP0000101"), load("MP0000201")
        assert imported.status == "suspended" and not verdict(imported).verified
        assert (imported.status, imported.raw_status) == (live.status, live.raw_status)

        def categories(p):
            return [(c.category, c.raw_status, c.status) for c in p.categories]

        assert categories(imported) == categories(live)
        latest = db.session.scalars(
            select(VerificationCheck)
            .where(VerificationCheck.practitioner_id == imported.id)
            .order_by(VerificationCheck.id.desc())
        ).first()
        assert (latest.source, latest.status, latest.effect) == (
            "snapshot:snapshot.csv",
            "suspended",
            "changed",
        )
        assert latest.raw_status == "ACTIVE / SUSPENDED"
        (event,) = db.session.scalars(select(StatusEvent)).all()
        assert (event.from_status, event.to_status) == ("active", "suspended")


def test_rows_with_differing_titles_are_one_answer_with_a_warning(any_app, tmp_path):
    rows = [
        person("MP0000301"),  # line 2: DR
        ["PROF", "FICTIONAL-MP0000301", "TEST PERSON", "MP0000301", "CAPE TOWN", "8001",
         "PUBLIC SERVICE", "ACTIVE"],  # line 3: another title
    ]  # fmt: skip
    result, lines = run_import(any_app, write_csv(tmp_path, rows))
    assert result.exit_code == 0, result.output
    warnings = [line for line in lines if line["type"] == "warning"]
    assert [(w["line"], w["registration_number"]) for w in warnings] == [(3, "MP0000301")]
    assert "other names than line 2" in warnings[0]["reason"]
    assert lines[-1]["rows_rejected"] == 0 and lines[-1]["rows_imported"] == 2
    with any_app.app_context():
        p = load("MP0000301")
        assert p.title == "DR" and p.status == "active"  # the first row's names, as live
        assert [c.category for c in p.categories] == ["INDEPENDENT PRACTICE", "PUBLIC SERVICE"]
        assert count(VerificationCheck) == 1


def test_an_undated_file_modified_in_the_future_counts_as_of_now(any_app, tmp_path):
    """A file whose modification time is ahead (a host's clock, a copied archive) is dated
    now at the latest: the new registration is never confirmed on a day not yet come."""
    import os

    path = write_csv(tmp_path, [person("MP0000888")])
    ahead = (utcnow() + timedelta(days=10)).timestamp()
    os.utime(path, (ahead, ahead))
    before = utcnow()
    result, lines = run_import(any_app, path)
    assert result.exit_code == 0, result.output
    summary = lines[-1]
    assert summary["as_of_from"] == "file modification time"
    as_of = datetime.fromisoformat(summary["as_of"])
    assert before - timedelta(seconds=1) <= as_of <= utcnow()
    with any_app.app_context():
        stored = load("MP0000888")
        assert stored.verified_at <= utcnow() and stored.status_as_of <= utcnow()
