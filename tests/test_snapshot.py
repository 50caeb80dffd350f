"""Reading register snapshot files: CSV variants, JSON Lines, bad rows, files that are not
snapshots. All data is fictional."""

from __future__ import annotations

import json

import pytest

from directory.registry.lookups import RegisterRow
from importers.sources.snapshot import RowProblem, Snapshot, SnapshotError, read_snapshot

HEADER = "Title,Surname,Fullname,Registration,City,Postal Code,Category,Status"


def write(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def items(path: str) -> list[tuple[int, RegisterRow | RowProblem]]:
    return list(read_snapshot(path))


def test_csv_with_bom_crlf_shuffled_columns_and_odd_heading_case(tmp_path):
    text = (
        "STATUS, registration ,postal code,CITY,category,fullname,SurName,title\r\n"
        "ACTIVE,MP   0000123,8001,CAPE TOWN,INDEPENDENT PRACTICE,ANNA EXAMPLE,"
        "FICTIONAL-ONE,DR\r\n"
        "SUSPENDED,dp 45,2001,JOHANNESBURG,INDEPENDENT PRACTICE,BEN SAMPLE,FICTIONAL-TWO,DR\r\n"
    )
    path = write(tmp_path, "snap.csv", b"\xef\xbb\xbf" + text.encode())
    assert Snapshot.open(path).format == "csv"
    got = items(path)
    assert got == [
        (
            2,
            RegisterRow(
                "MP0000123", "DR", "FICTIONAL-ONE", "ANNA EXAMPLE", "CAPE TOWN", "8001",
                "INDEPENDENT PRACTICE", "ACTIVE",
            ),
        ),
        (
            3,
            RegisterRow(
                "DP0000045", "DR", "FICTIONAL-TWO", "BEN SAMPLE", "JOHANNESBURG", "2001",
                "INDEPENDENT PRACTICE", "SUSPENDED",
            ),
        ),
    ]  # fmt: skip


def test_lf_without_bom_semicolons_extra_columns_and_blank_lines(tmp_path):
    text = (
        "Registration;Title;Surname;Fullname;City;Postal Code;Category;Status;Notes\n"
        "\n"
        "MP0000001;DR;FICTIONAL-A;ANNA;DURBAN;4001;INTERN;INACTIVE;ignored\n"
    )
    got = items(write(tmp_path, "snap.txt", text))
    assert [(line, row.registration_number, row.status) for line, row in got] == [
        (3, "MP0000001", "INACTIVE")
    ]


def test_quoted_values_keep_line_numbers_right(tmp_path):
    text = (
        HEADER + "\n"
        'DR,"FICTIONAL, WITH COMMA","ANNA\nON TWO LINES",MP0000001,DURBAN,4001,INTERN,ACTIVE\n'
        "DR,FICTIONAL-B,BEN,MP0000002,DURBAN,4001,INTERN,ACTIVE\n"
        "DR,FICTIONAL-C,CARL,XX,DURBAN,4001,INTERN,ACTIVE\n"
    )
    got = items(write(tmp_path, "snap.csv", text))
    assert got[0][1].surname == "FICTIONAL, WITH COMMA"
    assert got[0][1].full_names == "ANNA ON TWO LINES"  # white space runs become one space
    assert [line for line, _ in got] == [2, 4, 5]
    assert isinstance(got[2][1], RowProblem) and got[2][1].line == 5


def test_bad_rows_are_problems_with_their_line_and_reason(tmp_path):
    text = (
        HEADER + "\n"
        "DR,FICTIONAL-A,ANNA,MPO012345,DURBAN,4001,INTERN,ACTIVE\n"  # letter O
        "DR,FICTIONAL-B,BEN,0012345,DURBAN,4001,INTERN,ACTIVE\n"  # no prefix
        "DR,,CARL,MP0000003,DURBAN,4001,,ACTIVE\n"  # no surname, no category
        "DR,FICTIONAL-D,DAN,MP0000004,DURBAN\n"  # too few values
        "DR,FICTIONAL-E,EVE,MP0000005,DURBAN,4001,INTERN,ACTIVE,EXTRA\n"  # too many
        "DR,FICTIONAL-F,FAY,MP0000006,DURBAN,4001,INTERN,   \n"  # blank status
    )
    got = dict(items(write(tmp_path, "snap.csv", text)))
    assert all(isinstance(p, RowProblem) for p in got.values())
    assert "letter O" in got[2].reason and "MP0012345" in got[2].reason
    assert "no register prefix" in got[3].reason
    assert got[4].reason == "missing required value(s): Surname, Category"
    assert got[4].registration_number == "MP0000003"
    assert "has 5 values but the header names 8 columns" in got[5].reason
    assert "has 9 values" in got[6].reason
    assert got[7].reason == "missing required value(s): Status"


def test_json_lines_with_the_same_keys(tmp_path):
    good = {
        "Title": "DR", "surname": "FICTIONAL-A", "FullName": "ANNA", "Registration": "PS 301",
        "City": "PRETORIA", "Postal Code": 2, "Category": "INTERN PSYCHOLOGIST",
        "Status": "INACTIVE", "extra": "ignored",
    }  # fmt: skip
    lines = [
        json.dumps(good),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({k: v for k, v in good.items() if k != "Status"}),
        json.dumps({**good, "City": {"nested": True}}),
        json.dumps({**good, "Registration": "PS302", "Title": None}),
    ]
    path = write(tmp_path, "snap.jsonl", "\r\n".join(lines) + "\r\n")
    assert Snapshot.open(path).format == "jsonl"
    got = dict(items(path))
    assert got[1] == RegisterRow(
        "PS0000301", "DR", "FICTIONAL-A", "ANNA", "PRETORIA", "2", "INTERN PSYCHOLOGIST",
        "INACTIVE",
    )  # fmt: skip
    assert "not valid JSON" in got[3].reason
    assert got[4].reason == "not a JSON object"
    assert got[5].reason == "missing key(s): Status"
    assert "not plain text: City" in got[6].reason
    assert got[7].registration_number == "PS0000302" and got[7].title is None


def test_format_is_told_by_content_not_extension(tmp_path):
    csv_named_jsonl = write(
        tmp_path, "a.jsonl", HEADER + "\nDR,X,Y,MP1,DURBAN,4001,INTERN,ACTIVE\n"
    )
    assert Snapshot.open(csv_named_jsonl).format == "csv"
    values = ["DR", "X", "Y", "MP1", "D", "1", "I", "ACTIVE"]
    record = dict(zip(HEADER.split(","), values, strict=True))
    jsonl_named_csv = write(tmp_path, "b.csv", json.dumps(record) + "\n")
    assert Snapshot.open(jsonl_named_csv).format == "jsonl"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \r\n\n", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"\x00\x01\x02binary\x00" * 10, "binary"),
        (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet"),
        (b"Title,Surname,Fullname,Registration,City\n", r"lacks the column\(s\)"),
        (b"Name,Number\nA,MP1\n", "Postal Code, Category, Status"),
        ((HEADER + ",Status\n").encode(), "names the column 'Status' twice"),
        ((HEADER + "\n").encode("utf-16"), "binary"),
        ("Titel,Übername\n".encode("latin-1"), "not UTF-8"),
        (b'[{"Title": "DR"}]', "JSON Lines"),
        (b'{"Title": "DR", "Surname": "X"}\n', r"lacks the column\(s\)"),
        (b"{not json at all\n", "not a JSON object"),
    ],
)
def test_files_that_cannot_be_snapshots_are_refused_at_open(tmp_path, content, message):
    path = write(tmp_path, "bad.csv", content)
    with pytest.raises(SnapshotError, match=message):
        Snapshot.open(path)


def test_a_missing_file_or_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SnapshotError, match="no such file"):
        Snapshot.open(tmp_path / "nope.csv")
    with pytest.raises(SnapshotError, match="is a directory"):
        Snapshot.open(tmp_path)


def test_an_undecodable_byte_deep_in_the_file_is_a_file_error_not_a_row(tmp_path):
    good = "".join(
        f"DR,FICTIONAL-{i},ANNA,MP{i:07d},DURBAN,4001,INTERN,ACTIVE\n" for i in range(1, 9000)
    )
    path = write(
        tmp_path,
        "snap.csv",
        (HEADER + "\n" + good).encode()
        + "DR,M\xfcller,X,MP9999999,D,1,I,ACTIVE\n".encode("latin-1"),
    )
    snapshot = Snapshot.open(path)  # the start looks fine
    with pytest.raises(SnapshotError, match="not UTF-8"):
        list(snapshot.rows())


def test_a_nul_byte_deep_in_the_file_is_a_file_error(tmp_path):
    good = "".join(
        f"DR,FICTIONAL-{i},ANNA,MP{i:07d},DURBAN,4001,INTERN,ACTIVE\n" for i in range(1, 9000)
    )
    path = write(tmp_path, "snap.csv", HEADER + "\n" + good + "DR,\x00,X,MP1,D,1,I,ACTIVE\n")
    with pytest.raises(SnapshotError, match="binary data"):
        list(Snapshot.open(path).rows())


def test_rows_stream_and_can_be_read_twice(tmp_path):
    body = "".join(
        f"DR,FICTIONAL-{i},ANNA,MP{i:07d},DURBAN,4001,INTERN,ACTIVE\n" for i in range(1, 501)
    )
    snapshot = Snapshot.open(write(tmp_path, "snap.csv", HEADER + "\n" + body))
    rows = snapshot.rows()
    assert next(rows)[0] == 2  # a generator: nothing read ahead of need
    assert sum(1 for _ in snapshot.rows()) == 500


def test_numbers_in_the_register_form_read_as_numbers_normalise_reads_them():
    """``checked_values`` reads the register's own form of a number without
    ``numbers.normalise``; whatever the form, the result is normalise's (or its error)."""
    from directory.registry import numbers
    from importers.sources.snapshot import checked_values

    raw = []
    for prefix in [*numbers.known_prefixes(), "MPX", "ZZ", "ZZZZ"]:
        for digits in ["0000123", "9999999", "012345", "00001234", "12O4567"]:
            raw += [f"{prefix}{digits}", f"{prefix} {digits}", f"{prefix}   {digits}"]
            raw += [f"{prefix.lower()} {digits}", f" {prefix}-{digits} ", f"{prefix}\t{digits}"]
    raw += [
        "MPO012345",
        "MP ",
        "0012345",
        "MP 001 2345",
        "\uff2d\uff30\uff10\uff10\uff11\uff12\uff13",
    ]  # full-width
    for text in raw:
        values = ["DR", "FICTIONAL", "TEST", text, "CAPE TOWN", "8001", "INTERN", "ACTIVE"]
        checked = checked_values(7, values)
        try:
            expected = numbers.normalise(" ".join(text.split()))
        except numbers.RegistrationNumberError as exc:
            assert isinstance(checked, RowProblem), text
            assert checked.reason == f"bad registration number: {exc}"
        else:
            assert not isinstance(checked, RowProblem), text
            assert checked[0] == expected, text
