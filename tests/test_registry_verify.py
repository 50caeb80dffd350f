"""``flask registry verify``: live look-ups over real HTTP against the fake iRegister,
its faults, number lists (text, CSV, Excel), the results file and resuming, and pacing.
All data is fictional."""

from __future__ import annotations

import csv
import itertools
import json

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from directory.extensions import db
from directory.registry.models import Practitioner, VerificationCheck


@pytest.fixture
def fast_retries(app):
    """Retries without the production backoff, so fault tests stay quick."""
    app.config["HPCSA_RETRY_BASE"] = 0.05
    return app


def verify(app, *args: str):
    result = app.test_cli_runner().invoke(args=["registry", "verify", *args, "--json"])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, lines


def results(lines: list[dict]) -> dict[str, dict]:
    return {line["registration_number"]: line for line in lines if line["type"] == "result"}


def asked(fake, number: str) -> int:
    return len(fake.register.requests_for(number))


def load(number: str) -> Practitioner | None:
    db.session.expire_all()
    return db.session.scalar(select(Practitioner).where(Practitioner.registration_number == number))


def test_verifying_numbers_looks_each_up_once_and_records_it(app, fake_iregister):
    result, lines = verify(app, "mp 101", "MP0000102", "MP   0000101", "MP0000103")
    assert result.exit_code == 0, result.output
    got = results(lines)
    assert list(got) == ["MP0000101", "MP0000102", "MP0000103"]
    one = got["MP0000101"]
    assert one["outcome"] == "ok" and one["status"] == "active"
    assert one["raw_status"] == "ACTIVE" and one["verified"] is True
    assert one["verified_at"] and one["input"] == "mp 101"
    assert got["MP0000102"]["raw_status"] == "ACTIVE / INACTIVE / ERASED - NON PAYMENT"
    assert got["MP0000102"]["status"] == "erased" and got["MP0000102"]["verified"] is False
    assert got["MP0000103"]["status"] == "suspended"
    assert asked(fake_iregister, "MP0000101") == 1  # typed twice, asked once
    assert lines[-1] == {
        "type": "summary", "numbers": 3, "invalid": 0, "looked_up": 3, "answered": 3,
        "errors": 0, "skipped": 0,
    }  # fmt: skip
    with app.app_context():
        assert load("MP0000101").status == "active"
        assert db.session.scalar(select(func.count()).select_from(VerificationCheck)) == 3


def test_human_output_says_verified_or_not(app):
    result = app.test_cli_runner().invoke(args=["registry", "verify", "MP0000101", "MP0000104"])
    assert result.exit_code == 0
    assert "MP0000101  ok        active    VERIFIED" in result.stdout
    assert "MP0000104  ok        erased    not verified" in result.stdout


def test_invalid_numbers_on_the_command_line_exit_2_and_nothing_is_asked(app, fake_iregister):
    result, _ = verify(app, "MP0000101", "MPO000102", "12345")
    assert result.exit_code == 2
    assert "did you mean MP0000102?" in result.stderr
    assert "'12345'" in result.stderr and "nothing was looked up" in result.stderr
    assert "Traceback" not in result.output
    assert fake_iregister.register.requests == []


def test_no_numbers_at_all_is_a_usage_error(app):
    result = app.test_cli_runner().invoke(args=["registry", "verify"])
    assert result.exit_code == 2 and "give one or more NUMBERs" in result.output


def test_a_number_the_register_does_not_list_is_reported_not_stored(app):
    result, lines = verify(app, "MP0999999")
    assert result.exit_code == 0
    line = results(lines)["MP0999999"]
    assert (line["outcome"], line["status"], line["verified"]) == ("not_found", "not_found", False)
    assert line["stored"] is False
    with app.app_context():
        assert load("MP0999999") is None


@pytest.mark.parametrize("kind", ["500", "429", "drop", "html_200", "invalid_json"])
def test_a_transient_fault_is_retried_and_then_answered(fast_retries, fake_iregister, kind):
    fake_iregister.register.retry_after = "0"
    fake_iregister.register.fail_next(kind, times=1, number="MP0000101")
    result, lines = verify(fast_retries, "MP0000101")
    assert result.exit_code == 0, result.output
    line = results(lines)["MP0000101"]
    assert line["outcome"] == "ok" and line["attempts"] == 2 and line["verified"] is True
    assert asked(fake_iregister, "MP0000101") == 2


@pytest.mark.parametrize("kind", ["error_field", "wrong_number", "missing_column"])
def test_a_nonsense_answer_is_an_error_not_retried_and_moves_nothing(
    fast_retries, fake_iregister, kind
):
    assert verify(fast_retries, "MP0000103")[0].exit_code == 0  # suspended, on record
    fake_iregister.register.fail_next(kind, times=1, number="MP0000103")
    result, lines = verify(fast_retries, "MP0000103")
    assert result.exit_code == 1
    line = results(lines)["MP0000103"]
    assert line["outcome"] == "error" and line["attempts"] == 1 and line["error"]
    assert line["status"] == "suspended"  # what the system believed before
    with fast_retries.app_context():
        p = load("MP0000103")
        assert p.status == "suspended" and p.consecutive_failures == 1


def test_a_register_that_stays_down_is_an_error_and_status_is_kept(fast_retries, fake_iregister):
    assert verify(fast_retries, "MP0000101")[0].exit_code == 0
    with fast_retries.app_context():
        verified_at = load("MP0000101").verified_at
    fake_iregister.register.fail_next("500", times=5, number="MP0000101")
    result, lines = verify(fast_retries, "MP0000101", "MP0000104")
    assert result.exit_code == 1
    got = results(lines)
    # HPCSA_RETRY_ATTEMPTS (4) requests, as the recheck makes.
    assert got["MP0000101"]["outcome"] == "error" and got["MP0000101"]["attempts"] == 4
    assert got["MP0000101"]["status"] == "active"  # an error never moves a status
    assert got["MP0000104"]["outcome"] == "ok"  # the run goes on
    assert lines[-1]["errors"] == 1 and lines[-1]["answered"] == 1
    with fast_retries.app_context():
        p = load("MP0000101")
        assert p.status == "active" and p.verified_at == verified_at
        assert p.consecutive_failures == 1  # one failed look-up: one history row
        outcomes = db.session.scalars(
            select(VerificationCheck.outcome)
            .where(VerificationCheck.practitioner_id == p.id)
            .order_by(VerificationCheck.id)
        ).all()
        assert outcomes == ["ok", "error"]


def test_an_unknown_number_that_fails_is_not_stored(fast_retries, fake_iregister):
    fake_iregister.register.fail_next("500", times=4, number="MP0000105")  # every attempt
    result, lines = verify(fast_retries, "MP0000105")
    assert result.exit_code == 1
    line = results(lines)["MP0000105"]
    assert (line["outcome"], line["status"], line["stored"]) == ("error", "unknown", False)
    with fast_retries.app_context():
        assert load("MP0000105") is None


def test_retry_after_is_honoured_before_the_retry(fast_retries, fake_iregister):
    fake_iregister.register.retry_after = "1"  # whole seconds, as RFC 9110 has it
    fake_iregister.register.fail_next("429", times=1, number="MP0000101")
    result, _ = verify(fast_retries, "MP0000101")
    assert result.exit_code == 0
    first, second = fake_iregister.register.requests_for("MP0000101")
    assert second.at - first.at >= 1.0  # the backoff alone would be 0.05 s


def test_a_long_retry_after_stops_the_run_politely(fast_retries, fake_iregister):
    fake_iregister.register.retry_after = "3600"
    fake_iregister.register.fail_next("429", times=1)
    result, lines = verify(fast_retries, "MP0000101", "MP0000102")
    assert result.exit_code == 1
    stopped = [line for line in lines if line["type"] == "stopped"]
    assert stopped and stopped[0]["retry_after"] == 3600
    assert len(fake_iregister.register.requests) == 1  # nothing more was asked


def test_look_ups_never_go_faster_than_the_rate(app, fake_iregister):
    numbers = ["MP0000101", "MP0000102", "MP0000103", "MP0000104", "DP0000201"]
    result, _ = verify(app, *numbers, "--rate", "4")
    assert result.exit_code == 0
    times = [r.at for r in fake_iregister.register.requests]
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Spaced by the client at 1/4 s; arrival at the fake may jitter a little either way.
    assert min(gaps) >= 0.25 - 0.06, gaps
    assert times[-1] - times[0] >= 4 * 0.25 - 0.06, gaps


def test_a_text_list_reports_bad_entries_with_their_row(app, fake_iregister, tmp_path):
    path = tmp_path / "staff.txt"
    path.write_text("Registration number\nMP0000101\n\nmpo000102\nnot a number\nDP 201\n")
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 1  # two entries are not numbers
    invalid = [line for line in lines if line["type"] == "invalid"]
    assert [(i["row"], i["input"]) for i in invalid] == [(4, "mpo000102"), (5, "not a number")]
    assert invalid[0]["suggestion"] == "MP0000102"
    got = results(lines)
    assert list(got) == ["MP0000101", "DP0000201"]
    assert got["DP0000201"]["row"] == 6
    assert lines[-1]["invalid"] == 2 and lines[-1]["answered"] == 2


def test_a_csv_list_finds_the_column_by_header(app, tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text(
        "Name;HPCSA No.;Phone\n"
        "Fictional Ndlovu;MP 0000101;021 000 0000\n"
        "Fictional Naidoo;MP0000103;021 000 0001\n",
        encoding="utf-8-sig",
    )
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 0, result.output
    assert "HPCSA No." in lines[0]["column"]
    assert {n: line["row"] for n, line in results(lines).items()} == {
        "MP0000101": 2,
        "MP0000103": 3,
    }


def test_a_csv_list_without_header_finds_the_column_by_content(app, tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text("Fictional A,2020,MP0000101\nFictional B,2021,MP0000104\n")
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 0, result.output
    assert "column 3" in lines[0]["column"] and "contents" in lines[0]["column"]
    assert list(results(lines)) == ["MP0000101", "MP0000104"]


def test_an_excel_list_is_read(app, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Staff member", "Registration number", "Started"])
    sheet.append(["Fictional Ndlovu", "MP0000101", 2020])
    sheet.append(["Fictional Botha", "dp 201", 2021])
    sheet.append(["Fictional Typo", "MPO000103", 2022])
    sheet.append([None, None, None])
    sheet.append(["Fictional Digits", 12345, 2023])
    path = tmp_path / "staff.xlsx"
    book.save(path)
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 1
    invalid = {line["row"]: line for line in lines if line["type"] == "invalid"}
    assert invalid[4]["suggestion"] == "MP0000103"
    assert "no register prefix" in invalid[6]["error"]
    assert {n: line["row"] for n, line in results(lines).items()} == {
        "MP0000101": 2,
        "DP0000201": 3,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Name,Phone\nFictional A,021 000 0000\n", "no column holds registration numbers"),
        (b"", "it is empty"),
        (b"\x00\x01binary\x00", "binary"),
        (b"PK\x03\x04 not really a workbook", "xlsx"),
    ],
)
def test_an_unusable_list_exits_2_and_asks_nothing(app, fake_iregister, tmp_path, content, message):
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    result, _ = verify(app, "--from", str(path))
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert fake_iregister.register.requests == []


def test_a_missing_list_exits_2(app, tmp_path):
    result, _ = verify(app, "--from", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_out_writes_one_row_per_number(app, tmp_path):
    staff = tmp_path / "staff.txt"
    staff.write_text("MP0000101\nMP0000104\nMPO000103\nMP0999999\n")
    out = tmp_path / "results.csv"
    result, _ = verify(app, "--from", str(staff), "--out", str(out))
    assert result.exit_code == 1  # one invalid entry
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["registration_number"], r["outcome"], r["status"], r["verified"]) for r in rows] == [
        ("", "invalid", "", ""),
        ("MP0000101", "ok", "active", "true"),
        ("MP0000104", "ok", "erased", "false"),
        ("MP0999999", "not_found", "not_found", "false"),
    ]
    assert rows[0]["row"] == "3" and "MP0000103" in rows[0]["error"]


def test_a_rerun_with_the_same_out_does_not_ask_again(fast_retries, fake_iregister, tmp_path):
    staff = tmp_path / "staff.txt"
    numbers = ["MP0000101", "MP0000102", "MP0000103", "MP0000104", "DP0000201"]
    staff.write_text("\n".join(numbers) + "\n")
    out = tmp_path / "results.csv"
    # The first run is cut short: the register keeps failing for one number.
    fake_iregister.register.fail_next("500", times=4, number="MP0000103")
    first, _ = verify(fast_retries, "--from", str(staff), "--out", str(out))
    assert first.exit_code == 1
    assert asked(fake_iregister, "MP0000103") == 4
    answered_first = {n: asked(fake_iregister, n) for n in numbers}

    second, lines = verify(fast_retries, "--from", str(staff), "--out", str(out))
    assert second.exit_code == 0, second.output
    resume = [line for line in lines if line["type"] == "resume"]
    assert resume == [{"type": "resume", "out": str(out), "already_answered": 4}]
    skipped = [line["registration_number"] for line in lines if line["type"] == "skipped"]
    assert skipped == ["MP0000101", "MP0000102", "MP0000104", "DP0000201"]
    assert list(results(lines)) == ["MP0000103"]
    for number in numbers:  # only the unanswered number was asked again
        expected = answered_first[number] + (1 if number == "MP0000103" else 0)
        assert asked(fake_iregister, number) == expected, number
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(r["registration_number"] for r in rows) == sorted(numbers)  # one each
    assert {r["outcome"] for r in rows} == {"ok"}

    human = fast_retries.test_cli_runner().invoke(
        args=["registry", "verify", "--from", str(staff), "--out", str(out)]
    )
    assert "5 of 5 numbers were already answered" in human.stderr
    assert "not asked again" in human.stdout


def test_out_refuses_a_file_that_is_not_its_own(app, fake_iregister, tmp_path):
    precious = tmp_path / "precious.csv"
    precious.write_text("Name,Salary\nFictional,1\n")
    result, _ = verify(app, "MP0000101", "--out", str(precious))
    assert result.exit_code == 2 and "not a results file" in result.stderr
    assert precious.read_text() == "Name,Salary\nFictional,1\n"
    staff = tmp_path / "staff.csv"
    staff.write_text("MP0000101\n")
    result, _ = verify(app, "--from", str(staff), "--out", str(staff))
    assert result.exit_code == 2 and "is the input list" in result.stderr
    assert fake_iregister.register.requests == []


# --- issue 9, hole 8: lists read as a practice manager writes them --------------------------
# On SQLite and PostgreSQL (``either_app``): each list's answers are recorded in the database.


def test_a_serial_number_column_never_wins_over_the_registration_column(either_app, tmp_path):
    app = either_app
    book = Workbook()
    sheet = book.active
    sheet.append(["Number", "Staff member", "HPCSA Registration"])
    sheet.append([1, "Fictional Ndlovu", "MP0000101"])
    sheet.append([2, "Fictional Botha", "DP0000201"])
    sheet.append([3, "Fictional Naidoo", "MP0000104"])
    path = tmp_path / "staff.xlsx"
    book.save(path)
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 0, result.output
    assert "HPCSA Registration" in lines[0]["column"]
    assert list(results(lines)) == ["MP0000101", "DP0000201", "MP0000104"]

    csv_path = tmp_path / "staff.csv"
    csv_path.write_text(
        "No.,Number,Name,Reg no\n1,10,Fictional A,MP0000101\n2,11,Fictional B,MP0000104\n"
    )
    result, lines = verify(app, "--from", str(csv_path))
    assert result.exit_code == 0, result.output
    assert "column 4" in lines[0]["column"] and "Reg no" in lines[0]["column"]
    assert list(results(lines)) == ["MP0000101", "MP0000104"]


def test_formula_cells_without_a_value_and_blank_cells_are_reported_with_their_row(
    either_app, fake_iregister, tmp_path
):
    app = either_app
    book = Workbook()
    sheet = book.active
    sheet.append(["Staff member", "Registration number"])
    sheet.append(["Fictional Ndlovu", "MP0000101"])
    sheet.append(["Fictional Formula", '="MP"&"0000104"'])  # openpyxl saves no value for it
    sheet.append(["Fictional Nobody", None])
    sheet.append(["Fictional Naidoo", "MP0000104"])
    path = tmp_path / "staff.xlsx"
    book.save(path)
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 1  # two rows could not be checked
    invalid = {line["row"]: line for line in lines if line["type"] == "invalid"}
    assert sorted(invalid) == [3, 4]
    assert "formula" in invalid[3]["error"] and '="MP"&"0000104"' in invalid[3]["error"]
    assert "no registration number in column 2" in invalid[4]["error"]
    assert list(results(lines)) == ["MP0000101", "MP0000104"]
    human = app.test_cli_runner().invoke(args=["registry", "verify", "--from", str(path)])
    assert "row 3: a formula" in human.stdout and "row 4: no registration number" in human.stdout


def test_spreadsheet_floats_are_read_and_bare_numbers_refused(either_app, tmp_path):
    app = either_app
    csv_path = tmp_path / "export.csv"
    csv_path.write_text("Name,HPCSA number\nFictional A,MP0000101.0\nFictional B,DP 0000201.00\n")
    result, lines = verify(app, "--from", str(csv_path))
    assert result.exit_code == 0, result.output
    assert {n: line["input"] for n, line in results(lines).items()} == {
        "MP0000101": "MP0000101.0",
        "DP0000201": "DP 0000201.00",
    }
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Registration"])
    sheet.append(["Fictional A", "MP0000104.0"])
    sheet.append(["Fictional Numeric", 690069.0])  # a number cell: no prefix, not a number
    path = tmp_path / "staff.xlsx"
    book.save(path)
    result, lines = verify(app, "--from", str(path))
    assert result.exit_code == 1
    assert list(results(lines)) == ["MP0000104"]
    (bad,) = [line for line in lines if line["type"] == "invalid"]
    assert bad["row"] == 3 and bad["input"] == "690069" and "no register prefix" in bad["error"]


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_resumed_run_judges_skipped_numbers_from_the_database_now(
    request, database, fake_iregister, tmp_path
):
    app = request.getfixturevalue("app" if database == "sqlite" else "pg_app")
    app.config["HPCSA_RETRY_BASE"] = 0.05
    staff = tmp_path / "staff.txt"
    staff.write_text("MP0000101\nMP0000105\n")
    out = tmp_path / "results.csv"
    # The first run is cut short: the register keeps failing for MP0000105.
    attempts = app.config["HPCSA_RETRY_ATTEMPTS"]
    fake_iregister.register.fail_next("500", times=attempts, number="MP0000105")
    first, lines = verify(app, "--from", str(staff), "--out", str(out))
    assert first.exit_code == 1 and results(lines)["MP0000101"]["verified"] is True
    # Meanwhile the register suspends MP0000101, and a check records it.
    fake_iregister.register.set_status("MP0000101", "SUSPENDED")
    one, _ = verify(app, "MP0000101")
    assert one.exit_code == 0

    second, lines = verify(app, "--from", str(staff), "--out", str(out))
    assert second.exit_code == 0, second.output
    (skipped,) = [line for line in lines if line["type"] == "skipped"]
    assert skipped["registration_number"] == "MP0000101"
    assert skipped["verified"] is False and skipped["status"] == "suspended"
    assert skipped["headline"] == "HPCSA register: suspended"
    assert skipped["verified_at"]  # the date of the register's last confirmation
    rows = {r["registration_number"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["MP0000101"]["verified"] == "false" and rows["MP0000101"]["status"] == "suspended"
    human = app.test_cli_runner().invoke(
        args=["registry", "verify", "--from", str(staff), "--out", str(out)]
    )
    assert "now: not verified, HPCSA register: suspended" in human.stdout
