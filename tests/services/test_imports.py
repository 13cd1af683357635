"""Imports that lose nothing: every row read is imported or rejected with its line and reason."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cati.models import Case, CasePhone, CaseStatus, DoNotCall, Enterprise, Industry, Replicate
from cati.services.imports import (
    ImportFileError,
    detect_encoding,
    import_enterprises,
    import_sample,
    parse_mapping,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def write_csv(path: Path, header, rows, encoding="utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_rejects(path) -> list[dict[str, str]]:
    raw = Path(path).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "rejects file must be UTF-8 with BOM (Excel)"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def ents(session, study):
    report = import_enterprises(session, study, DATA / "enterprises_small.csv")
    assert report.imported == 6
    session.commit()
    return {e.external_id: e for e in session.scalars(select(Enterprise).where(Enterprise.study_id == study.id))}


SAMPLE_HEADER = ["case_ref", "enterprise_id", "phone", "phone2", "service_type"]


# ------------------------------------------------------------------------------------------------ enterprises


def test_enterprises_seed_the_15_industries_and_accept_zh_en_and_alias(session, study, ents):
    names = set(session.scalars(select(Industry.name)))
    assert len(names) == 15 and {"通信", "银行", "互联网旅游", "物流快递", "其他"} <= names
    assert ents["E004"].industry.name == "保险"  # given in English
    assert ents["E005"].industry.name == "地产"  # given as alias 房地产
    assert ents["E003"].quota_target == 2
    assert ents["E004"].quota_target == 20  # empty quota → the study's per_enterprise
    assert ents["E001"].region == "华南"


def test_enterprise_rejects_each_reason(session, study, tmp_path):
    f = write_csv(tmp_path / "ents.csv", ["enterprise_id", "name", "industry", "province", "quota"], [
        ["A1", "甲银行", "银行", "广东", "20"],  # line 2 ok
        ["A2", "乙公司", "餐饮", "广东", "20"],  # 3 unknown industry
        ["A1", "甲银行二", "银行", "广东", "20"],  # 4 duplicate id
        ["A3", "", "银行", "广东", "20"],  # 5 missing name
        ["A4", "丁证券", "证券", "广东"],  # 6 wrong column count
        ["A5", "戊保险", "保险", "广东", "-3"],  # 7 bad quota
    ])
    rej = tmp_path / "rej.csv"
    report = import_enterprises(session, study, f, rejects_path=rej)
    assert (report.read, report.imported, report.rejected) == (6, 1, 5)
    by_line = {r.line: r.reason for r in report.rejects}
    assert "unknown industry" in by_line[3] and "未知行业" in by_line[3]
    assert "same as line 2" in by_line[4]
    assert "missing required value: name" in by_line[5]
    assert "expected 5, got 4" in by_line[6]
    assert "quota" in by_line[7]
    rows = read_rejects(rej)
    assert [r["line"] for r in rows] == ["3", "4", "5", "6", "7"]
    assert list(rows[0]) == ["enterprise_id", "name", "industry", "province", "quota", "line", "reason"]
    assert rows[0]["name"] == "乙公司"

    again = import_enterprises(session, study, f)
    assert again.imported == 0 and again.read == 6 and again.already_present == 2  # lines 2 and 4 (A1)
    assert "already imported" in {r.line: r.reason for r in again.rejects}[2]


# ----------------------------------------------------------------------------------------------------- sample


def test_utf8_sample_imports_cases_phones_replicates(session, study, ents, tmp_path):
    f = write_csv(tmp_path / "s.csv", SAMPLE_HEADER, [
        ["C1", "E001", "138-1234-5678", "0755 8888 8888", "投诉"],
        ["C2", "E001", "+86 13912345678", "", "咨询"],
        ["C3", "E002", "0086 136 1111 2222", "", "咨询"],
    ])
    report = import_sample(session, study, f)
    assert (report.read, report.imported, report.rejected) == (3, 3, 0)
    assert report.encoding == "utf-8"
    c1 = session.scalar(select(Case).where(Case.case_ref == "C1"))
    assert [p.e164 for p in c1.phones] == ["+8613812345678", "+8675588888888"]
    assert [p.kind for p in c1.phones] == ["mobile", "fixed"]
    assert c1.timezone == "Asia/Shanghai"
    assert c1.attributes == {"service_type": "投诉"}
    assert c1.replicate == 1 and c1.status == CaseStatus.READY  # release="first"
    reps = session.scalars(select(Replicate).where(Replicate.study_id == study.id)).all()
    assert sorted((r.enterprise_id, r.number, r.size) for r in reps) == sorted(
        [(ents["E001"].id, 1, 2), (ents["E002"].id, 1, 1)])
    assert all(r.released_at is not None for r in reps)


def test_bom_file_reads_its_first_header(session, study, ents, tmp_path):
    f = write_csv(tmp_path / "bom.csv", SAMPLE_HEADER, [["B1", "E001", "13812345678", "", "x"]],
                  encoding="utf-8-sig")
    report = import_sample(session, study, f)
    assert report.encoding == "utf-8-sig" and report.imported == 1
    # forced utf-8 on a BOM file still finds the case_ref column
    f2 = write_csv(tmp_path / "bom2.csv", SAMPLE_HEADER, [["B2", "E001", "13812345679", "", "x"]],
                   encoding="utf-8-sig")
    assert import_sample(session, study, f2, encoding="utf-8").imported == 1


def test_gbk_sample_with_chinese_headers(session, study, ents, tmp_path):
    src = DATA / "sample_gbk.csv"
    assert detect_encoding(src.read_bytes()) == "gb18030"
    rej = tmp_path / "rej.csv"
    report = import_sample(session, study, src, rejects_path=rej)
    assert (report.read, report.imported, report.rejected) == (6, 4, 2)
    by_line = {r.line: r.reason for r in report.rejects}
    assert "landline without area code" in by_line[6]
    assert "unknown enterprise E009" in by_line[7]
    s2 = session.scalar(select(Case).where(Case.case_ref == "S002"))
    assert [p.e164 for p in s2.phones] == ["+8613987654321", "+861062345678"]
    assert s2.attributes == {"服务类型": "咨询", "称呼": "李女士"}
    s3 = session.scalar(select(Case).where(Case.case_ref == "S003"))
    assert s3.phones[0].e164 == "+8613611112222"  # full-width 0086 prefix
    rows = read_rejects(rej)
    assert rows[0]["称呼"] == "钱先生" and rows[0]["line"] == "6"
    # Forcing the wrong encoding spoils the Chinese headers: required columns are then missing.
    with pytest.raises(ImportFileError, match="missing required column"):
        import_sample(session, study, src, encoding="latin-1")


def test_xlsx_sample(session, study, ents, tmp_path):
    report = import_sample(session, study, DATA / "sample.xlsx", rejects_path=tmp_path / "r.csv")
    assert report.encoding is None
    assert (report.read, report.imported, report.rejected) == (5, 3, 2)  # the blank row is not data
    by_line = {r.line: r.reason for r in report.rejects}
    assert "premium/service number" in by_line[6]
    assert "same as line 2" in by_line[7]
    x3 = session.scalar(select(Case).where(Case.case_ref == "X003"))
    assert x3.phones[0].e164 == "+8613812340003"  # a number cell (float) is read as its digits
    x2 = session.scalar(select(Case).where(Case.case_ref == "X002"))
    assert [p.kind for p in x2.phones] == ["mobile", "fixed"]


def test_every_sample_reject_reason(session, study, ents, tmp_path):
    session.add(DoNotCall(e164="+8613900000009", reason="respondent asked", source="respondent"))
    prior = write_csv(tmp_path / "prior.csv", SAMPLE_HEADER, [["OLD1", "E002", "13700000001", "", ""]])
    assert import_sample(session, study, prior).imported == 1
    f = write_csv(tmp_path / "s.csv", SAMPLE_HEADER + ["replicate", "timezone"], [
        ["K1", "E001", "13800000001", "", "", "", ""],  # 2 ok
        ["K2", "E001", "13800000001", "", "", "", ""],  # 3 duplicate phone in file
        ["K1", "E001", "13800000002", "", "", "", ""],  # 4 duplicate case_ref in file
        ["K3", "E404", "13800000003", "", "", "", ""],  # 5 unknown enterprise
        ["K4", "E001", "1380000000", "", "", "", ""],  # 6 too short
        ["K5", "E001", "13900000009", "", "", "", ""],  # 7 DNC
        ["K6", "E001", "13700000001", "", "", "", ""],  # 8 phone already in the study
        ["OLD1", "E002", "13800000006", "", "", "", ""],  # 9 case_ref already in the study
        ["K7", "E001", "", "", "", "", ""],  # 10 missing phone
        ["K8", "E001", "13800000008"],  # 11 wrong column count
        ["K9", "E001", "13800000009", "95588", "", "", ""],  # 12 bad second phone
        ["K10", "E001", "13800000010", "", "", "x", ""],  # 13 bad replicate
        ["K11", "E001", "13800000011", "", "", "", "Mars/Olympus"],  # 14 bad time zone
        ["K12", "E001", "abc", "", "", "", ""],  # 15 not digits
        ["K13", "E001", "13800000013", "", "", "2", "Asia/Urumqi"],  # 16 ok
    ])
    rej = tmp_path / "rej.csv"
    report = import_sample(session, study, f, rejects_path=rej)
    assert (report.read, report.imported, report.rejected) == (15, 2, 13)
    assert report.imported + report.rejected == report.read
    r = {x.line: x.reason for x in report.rejects}
    assert "duplicate phone (same as line 2)" in r[3] and "138****0001" in r[3]
    assert "duplicate case_ref (same as line 2)" in r[4]
    assert "unknown enterprise E404" in r[5]
    assert "too short" in r[6]
    assert "do-not-call" in r[7] and "139****0009" in r[7]
    assert "already in this study" in r[8]
    assert "already imported" in r[9] and "OLD1" in r[9]
    assert "missing required value: phone" in r[10]
    assert "wrong column count" in r[11]
    assert r[12].startswith("phone2:") and "premium/service" in r[12]
    assert "replicate" in r[13]
    assert "unknown time zone" in r[14]
    assert "not digits" in r[15]
    assert report.already_present == 1
    # No full number is ever written into a reason.
    assert not any("13800000001" in x or "13900000009" in x for x in r.values())
    k13 = session.scalar(select(Case).where(Case.case_ref == "K13"))
    assert k13.replicate == 2 and k13.timezone == "Asia/Urumqi" and k13.status == CaseStatus.UNRELEASED
    rows = read_rejects(rej)
    assert list(rows[0])[-2:] == ["line", "reason"] and len(rows) == 13
    assert rows[0]["phone"] == "13800000001"  # the original value, so the user can fix and re-import


def test_mapping_and_reimport_is_idempotent(session, study, ents, tmp_path):
    f = write_csv(tmp_path / "m.csv", ["ID", "Firm", "Mobile", "Note"], [
        ["M1", "E001", "13811112222", "a"], ["M2", "E002", "13811113333", "b"]])
    with pytest.raises(ImportFileError, match="missing required column"):
        import_sample(session, study, f)
    mapping = parse_mapping(["case_ref=ID", "enterprise_id=Firm", "phone=Mobile"])
    first = import_sample(session, study, f, mapping=mapping)
    assert (first.imported, first.rejected) == (2, 0)
    assert session.scalar(select(Case.attributes).where(Case.case_ref == "M1")) == {"Note": "a"}
    second = import_sample(session, study, f, mapping=mapping)
    assert (second.read, second.imported, second.rejected, second.already_present) == (2, 0, 2, 2)
    assert session.scalar(select(func.count()).select_from(Case)) == 2
    assert session.scalar(select(func.count()).select_from(CasePhone)) == 2
    with pytest.raises(ImportFileError, match="not in the header"):
        import_sample(session, study, f, mapping={"phone": "Handy"})


def test_replicate_blocks_and_release_modes(session, study, ents, tmp_path):
    # E003 has quota 2 → default blocks of 6 cases.
    rows = [[f"R{i}", "E003", f"1381000{i:04d}", "", ""] for i in range(14)]
    f = write_csv(tmp_path / "r.csv", SAMPLE_HEADER, rows)
    report = import_sample(session, study, f, release="first")
    assert report.imported == 14 and report.replicates_released == 1
    got = session.execute(select(Case.replicate, Case.status).where(Case.enterprise_id == ents["E003"].id)
                          .order_by(Case.id)).all()
    assert [g[0] for g in got] == [1] * 6 + [2] * 6 + [3] * 2
    assert [g[1] for g in got] == [CaseStatus.READY] * 6 + [CaseStatus.UNRELEASED] * 8
    # A later file continues after the highest replicate and never tops up a released batch.
    f2 = write_csv(tmp_path / "r2.csv", SAMPLE_HEADER, [["R99", "E003", "13810009999", "", ""]])
    import_sample(session, study, f2, release="all", replicate_size=4)
    late = session.scalar(select(Case).where(Case.case_ref == "R99"))
    assert late.replicate == 4 and late.status == CaseStatus.READY
    f3 = write_csv(tmp_path / "r3.csv", SAMPLE_HEADER, [["N1", "E006", "13810008888", "", ""]])
    import_sample(session, study, f3, release="none")
    assert session.scalar(select(Case.status).where(Case.case_ref == "N1")) == CaseStatus.UNRELEASED
    assert session.scalar(select(Replicate.released_at).where(Replicate.enterprise_id == ents["E006"].id)) is None


def test_unreadable_files(session, study, tmp_path):
    with pytest.raises(ImportFileError, match="not found"):
        import_sample(session, study, tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="empty"):
        import_sample(session, study, empty)
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    with pytest.raises(ImportFileError, match="xlsx"):
        import_sample(session, study, xls)
    badzip = tmp_path / "broken.xlsx"
    shutil.copy(DATA / "sample.xlsx", badzip)
    badzip.write_bytes(badzip.read_bytes()[:200])
    with pytest.raises(ImportFileError, match="XLSX"):
        import_sample(session, study, badzip)


def test_undecodable_bytes_reject_only_their_row(session, study, ents, tmp_path):
    f = tmp_path / "mixed.csv"
    # UTF-8 file with one row carrying stray bytes: only that row is lost, and it says why.
    head = ",".join(SAMPLE_HEADER).encode() + b"\n"
    body = b"U1,E001,13812340011,,ok\n" + b"U2,E001,13812340012,,\xff\xfe\n" + ("U3,E001,13812340013,,好\n").encode()
    f.write_bytes(head + body)
    report = import_sample(session, study, f, encoding="utf-8")
    assert (report.imported, report.rejected) == (2, 1)
    assert report.rejects[0].line == 3 and "undecodable" in report.rejects[0].reason


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D", "E"]),
                          st.sampled_from(["E001", "E002", "E404", ""]),
                          st.sampled_from(["13812340001", "13812340002", "139 1234 0003", "12345", "", "x"])),
                min_size=1, max_size=12))
def test_imported_plus_rejected_equals_read(session, study, ents, tmp_path_factory, rows):
    """Whatever the rows, each is counted once and nothing is imported twice."""
    d = tmp_path_factory.mktemp("prop")
    f = write_csv(d / "p.csv", ["case_ref", "enterprise_id", "phone"], rows)
    nested = session.begin_nested()
    before = session.scalar(select(func.count()).select_from(Case))
    report = import_sample(session, study, f)
    assert report.read == len(rows)
    assert report.imported + report.rejected == report.read
    assert len(report.rejects) == report.rejected
    after = session.scalar(select(func.count()).select_from(Case))
    assert after - before == report.imported
    again = import_sample(session, study, f)
    assert again.imported == 0 and again.rejected == again.read
    nested.rollback()


# ------------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(db_url, study, tmp_path):
    from click.testing import CliRunner

    from cati.cli.imports import import_

    env = {"CATI_DATABASE_URL": db_url, "CATI_INSTANCE_PATH": str(tmp_path / "instance"),
           "CATI_SECRET_KEY": "test"}

    def run(*args):
        return CliRunner().invoke(import_, list(args), env=env, catch_exceptions=False)

    return run


def test_cli_imports_and_reports(cli, tmp_path, session_factory):
    ents_file = tmp_path / "enterprises_small.csv"  # a copy: the default rejects file goes beside the input
    shutil.copy(DATA / "enterprises_small.csv", ents_file)
    r = cli("enterprises", str(ents_file))
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == "imported=6 rejected=0 read=6"
    src = tmp_path / "样本.csv"
    shutil.copy(DATA / "sample_gbk.csv", src)
    r = cli("sample", str(src), "--release", "all")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1] == "imported=4 rejected=2 read=6"
    assert "encoding: gb18030" in lines
    assert any(line.startswith("line 6: ") and "landline without area code" in line for line in lines)
    default_rejects = tmp_path / "样本.csv.rejects.csv"
    assert [row["line"] for row in read_rejects(default_rejects)] == ["6", "7"]
    # Committed: a new session sees the cases. Full numbers never appear in the output.
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 4
    assert "13812345678" not in r.output
    # Again: nothing imported twice, still exit 0.
    r = cli("sample", str(src), "--rejects", str(tmp_path / "again.csv"))
    assert r.exit_code == 0
    assert r.output.strip().splitlines()[-1] == "imported=0 rejected=6 read=6"
    assert len(read_rejects(tmp_path / "again.csv")) == 6


def test_cli_mapping_options(cli, tmp_path):
    assert cli("enterprises", str(DATA / "enterprises_small.csv"), "--rejects", str(tmp_path / "e.rej.csv")).exit_code == 0
    f = write_csv(tmp_path / "m.csv", ["ID", "Firm", "Mobile"], [["M1", "E001", "13811112222"]])
    r = cli("sample", str(f), "--map", "case_ref=ID", "--map", "enterprise_id=Firm", "--map", "phone=Mobile")
    assert r.output.strip().splitlines()[-1] == "imported=1 rejected=0 read=1"
    mfile = tmp_path / "map.yaml"
    mfile.write_text("case_ref: ID\nenterprise_id: Firm\nphone: Mobile\n", encoding="utf-8")
    f2 = write_csv(tmp_path / "m2.csv", ["ID", "Firm", "Mobile"], [["M2", "E001", "13811113333"]])
    r = cli("sample", str(f2), "--mapping", str(mfile), "--release", "none")
    assert r.output.strip().splitlines()[-1] == "imported=1 rejected=0 read=1"


def test_cli_unreadable_file_exits_nonzero(cli, tmp_path):
    r = cli("sample", str(tmp_path / "missing.csv"))
    assert r.exit_code != 0 and "not found" in r.output
    f = write_csv(tmp_path / "x.csv", ["a", "b"], [["1", "2"]])
    r = cli("sample", str(f))
    assert r.exit_code != 0 and "missing required column" in r.output
    r = cli("sample", str(f), "--study", "no_such_study")
    assert r.exit_code != 0


def test_example_files_import_cleanly(session, study, tmp_path):
    root = Path(__file__).resolve().parents[2] / "config" / "examples"
    e = import_enterprises(session, study, root / "enterprises.csv")
    assert (e.imported, e.rejected) == (360, 0)
    assert session.scalar(select(func.count(func.distinct(Enterprise.industry_id)))) == 15
    s = import_sample(session, study, root / "sample.csv")
    assert (s.read, s.imported, s.rejected) == (21600, 21600, 0)
    assert s.replicates_released == 360
    assert session.scalar(select(func.count()).select_from(Case).where(Case.status == CaseStatus.READY)) == 360 * 60


def test_ids_we_assign_leave_the_database_consistent(session, study, ents, tmp_path):
    """After a bulk import (ids assigned by the import), ordinary ORM inserts still get fresh ids."""
    f = write_csv(tmp_path / "s.csv", SAMPLE_HEADER, [[f"I{i}", "E001", f"1391234{i:04d}", "", ""] for i in range(5)])
    import_sample(session, study, f)
    orm_case = Case(study_id=study.id, enterprise_id=ents["E001"].id, case_ref="ORM1")
    orm_case.phones.append(CasePhone(study_id=study.id, e164="+8613912349999"))
    session.add(orm_case)
    session.flush()
    ids = session.scalars(select(Case.id).order_by(Case.id)).all()
    assert len(set(ids)) == 6 and orm_case.id == max(ids)
    phones_of = session.scalars(select(CasePhone.case_id).where(CasePhone.e164 == "+8613912340003")).all()
    assert len(phones_of) == 1
    assert session.get(Case, phones_of[0]).case_ref == "I3"  # each phone row points at its own case


def test_background_writer_raises_a_failed_write(session, study, ents):
    """A chunk that fails to write (here: a duplicate primary key) fails the import instead of vanishing."""
    import sqlite3

    import sqlalchemy.exc

    from cati.services.imports import _bulk_sql, _Writer

    errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError, sqlalchemy.exc.IntegrityError)
    try:
        import psycopg

        errors += (psycopg.errors.IntegrityError,)
    except ImportError:  # pragma: no cover
        pass
    conn = session.connection()
    sql, _ = _bulk_sql(conn, Industry.__table__, ("id", "name"))
    existing = session.scalar(select(func.min(Industry.id)))
    with pytest.raises(errors) as err:
        with _Writer(conn) as w:
            w.submit([(sql, [(existing, "重复")])])
            w.close()
    assert "unique" in str(err.value).lower() or "duplicate" in str(err.value).lower()


def test_rejects_file_always_reflects_the_last_run(session, study, ents, tmp_path):
    rej = tmp_path / "r.csv"
    bad = write_csv(tmp_path / "bad.csv", SAMPLE_HEADER, [["Z1", "E404", "13812340077", "", ""]])
    report = import_sample(session, study, bad, rejects_path=rej)
    line, reason = report.rejects[0]
    assert line == 2 and "E404" in reason
    good = write_csv(tmp_path / "good.csv", SAMPLE_HEADER, [["Z2", "E001", "13812340078", "", ""]])
    report = import_sample(session, study, good, rejects_path=rej)
    assert report.rejected == 0 and report.rejects_path == str(rej)
    assert read_rejects(rej) == []  # header only: the earlier run's rejects are gone


@pytest.mark.parametrize("text", [
    "case_ref,enterprise_id,phone,name\nC1,E1,13812345678,王\n",  # one character: charset-normalizer says Big5
    "enterprise_id,name,industry,province\nE1,中国银行,银行,北京\n",  # charset-normalizer says CP949
    "a,b\n1,Café\n",
])
def test_short_gbk_files_are_detected_as_gb18030(text):
    assert detect_encoding(text.encode("gbk")) == "gb18030"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(text.encode("utf-8-sig")) == "utf-8-sig"


def test_a_prefix_cut_inside_a_character_is_still_utf8():
    data = ("名" * 30000).encode("utf-8")
    assert len(data) > 65536
    assert detect_encoding(data[:65536], truncated=True) == "utf-8"


def test_released_sample_is_offered_by_the_scheduler(session_factory, study, tmp_path):
    """Imported and released cases are callable at once; unreleased replicates are not (until released)."""
    from datetime import UTC, datetime, timedelta

    from cati.db import transaction
    from cati.models import Study
    from cati.services.imports import import_enterprises
    from cati.services.scheduling import Claim, next_case
    from tests import factories

    ents_file = write_csv(tmp_path / "e.csv", ["enterprise_id", "name", "industry", "province"],
                          [["E9", "甲银行", "银行", "广东"]])
    sample = write_csv(tmp_path / "s.csv", ["case_ref", "enterprise_id", "phone"],
                       [[f"R{i}", "E9", f"1391234{i:04d}"] for i in range(4)])
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        import_enterprises(s, st, ents_file)
        report = import_sample(s, st, sample, replicate_size=2)  # replicate 1 released, 2 not
        iv = factories.user(s).id
        assert report.imported == 4
    # A Monday 10:00 in Shanghai at least ten minutes after the import (which stamped wall-clock time).
    now = factories.weeks_later_than(factories.MONDAY_10AM, datetime.now(UTC) + timedelta(minutes=10))
    offered = []
    for _ in range(3):
        with transaction(session_factory) as s:
            got = next_case(s, st, iv, now)
        if isinstance(got, Claim):
            offered.append(got.case_id)
            with transaction(session_factory) as s:
                s.get(Case, got.case_id).status = CaseStatus.STOPPED
    with transaction(session_factory) as s:
        refs = [s.get(Case, cid).case_ref for cid in offered]
        # Replicate 2 was not offered while replicate 1 had cases; it was released by the study's automatic rule
        # (calling_rules.sample_release: 2 open cases for a quota of 20), not by the import.
        from cati.models import Replicate

        rep2 = s.scalar(select(Replicate).where(Replicate.number == 2))
        assert rep2.automatic and rep2.released_at is not None
    assert sorted(refs[:2]) == ["R0", "R1"] and refs[2] in ("R2", "R3")
