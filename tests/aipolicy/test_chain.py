"""The event log's hash chain: written across rotations and restarts, and every kind of tampering found."""

from __future__ import annotations

import datetime
import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aipolicy import EventLog, read_events
from aipolicy.eventlog._chain import GENESIS, line_hash, parse_log_age, parse_log_size, rotated_files
from aipolicy.eventlog._verify import ChainReport, verify_logs

PAD = "x" * 150  # lines of about 270 bytes: a 1400-byte limit puts 5 lines in each file


def event(number: int) -> dict[str, object]:
    return {"v": 1, "ts": "2026-11-30T10:00:00.000Z", "event": "decision", "action": "block", "n": number, "pad": PAD}


def write_log(path: Path, count: int, max_bytes: int = 0) -> list[Path]:
    """``count`` events written with rotation; the files oldest first (rotated ones compressed)."""
    log = EventLog(str(path), max_bytes=max_bytes)
    try:
        for number in range(count):
            log.write(event(number))
    finally:
        log.close()  # waits for the compression of rotated files
    return [Path(p) for p in rotated_files(str(path))] + [path]


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def verify(path: Path, **options: bool) -> ChainReport:
    [report] = verify_logs([f"{path}*"], **options)
    return report


def problem_of(report: ChainReport) -> tuple[str, str, int]:
    assert report.problem is not None, report
    return report.problem.kind, Path(report.problem.file).name, report.problem.line


@pytest.fixture
def rotated(tmp_path: Path) -> list[Path]:
    files = write_log(tmp_path / "events.jsonl", 20, max_bytes=1400)
    assert len(files) >= 4 and all(len(read_lines(f)) >= 4 for f in files)
    return files


# --- writing -------------------------------------------------------------------------------


def test_lines_carry_seq_and_the_hash_of_the_line_before(tmp_path: Path) -> None:
    [path] = write_log(tmp_path / "events.jsonl", 3)
    lines = read_lines(path)
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [0, 1, 2]
    assert records[0]["prev"] == GENESIS
    assert records[1]["prev"] == line_hash(lines[0].rstrip(b"\n"))
    assert records[2]["prev"] == line_hash(lines[1].rstrip(b"\n"))
    assert list(records[0])[:3] == ["v", "ts", "event"]  # the writer's fields come first, the links last


def test_rotation_compresses_and_the_chain_runs_across_files(rotated: list[Path]) -> None:
    assert [f.suffix for f in rotated[:-1]] == [".gz"] * (len(rotated) - 1)
    assert all(f.stat().st_size <= 1400 for f in rotated)
    assert {f.stat().st_mode & 0o777 for f in rotated} == {0o640}  # they name users: not world-readable
    numbers = [json.loads(line)["n"] for f in rotated for line in read_lines(f)]
    assert numbers == list(range(20))  # nothing lost or repeated
    first_of_second = json.loads(read_lines(rotated[1])[0])
    assert first_of_second["prev"] == line_hash(read_lines(rotated[0])[-1].rstrip(b"\n"))
    report = verify(rotated[-1])
    assert (report.status, report.lines, report.first_seq, report.last_seq) == ("intact", 20, 0, 19)
    assert report.files == [str(f) for f in rotated]


def test_readers_take_the_rotated_gzip_files(rotated: list[Path]) -> None:
    reader = read_events([f"{rotated[-1]}*"])
    assert sorted(e.data["n"] for e in reader) == list(range(20))
    assert not reader.skipped


def test_a_file_both_plain_and_compressed_is_read_once(rotated: list[Path]) -> None:
    plain = rotated[0].with_suffix("")  # caught between compression and removal of the plain file
    write_lines(plain, read_lines(rotated[0]))
    assert sorted(e.data["n"] for e in read_events([f"{rotated[-1]}*"])) == list(range(20))
    assert verify(rotated[-1]).status == "intact"


def test_restart_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    for _ in range(3):
        write_log(path, 2)
    assert [json.loads(line)["seq"] for line in read_lines(path)] == list(range(6))
    assert verify(path).status == "intact"


def test_restart_on_an_empty_file_continues_from_the_newest_rotated_file(rotated: list[Path]) -> None:
    current = rotated[-1]
    os.rename(current, f"{current}-29991231235959999")  # as if stopped right after a rotation
    current.touch()
    write_log(current, 2, max_bytes=1024)
    report = verify(current)
    assert (report.status, report.last_seq) == ("intact", 21)


def test_restart_after_a_torn_line_records_it_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_log(path, 3)
    with path.open("ab") as file:
        file.write(b'{"v":1,"ts":"2026-11-30T10:00:00.000Z","event":"decis')  # a crash in the middle of a line
    assert verify(path).status == "torn"
    write_log(path, 2)
    lines = read_lines(path)
    resumed = json.loads(lines[4])
    assert resumed["event"] == "log_resumed"
    assert (resumed["torn_bytes"], resumed["seq"]) == (len(lines[3]) - 1, 3)
    assert resumed["prev"] == line_hash(lines[2].rstrip(b"\n"))
    report = verify(path)
    assert report.status == "intact"
    assert [(t.line, t.acknowledged) for t in report.torn] == [(4, True)]
    assert report.last_seq == 5
    reader = read_events([str(path)])
    assert [e.data["n"] for e in reader] == [0, 1, 2, 0, 1]
    assert reader.skipped.counts == {"not-json": 1}


def test_torn_first_line_of_a_new_file_links_on_from_the_rotated_file(rotated: list[Path]) -> None:
    current = rotated[-1]
    os.rename(current, f"{current}-29991231235959999")  # stopped right after a rotation …
    current.write_bytes(b'{"v":1,"ts":"2026-')  # … in the middle of the new file's first line
    write_log(current, 1)
    report = verify(current)
    assert (report.status, report.last_seq) == ("intact", 21)  # 20 events, log_resumed, 1 event
    assert [(Path(t.file).name, t.line, t.acknowledged) for t in report.torn] == [(current.name, 1, True)]


def test_a_log_begun_without_the_chain_is_continued(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"old":1}\n{"old":2}\n', encoding="ascii")
    write_log(path, 2)
    report = verify(path)
    assert (report.status, report.unchained, report.lines) == ("intact", 2, 2)
    path.write_text(path.read_text().replace('"old":1', '"old":9'))  # such lines are not protected …
    assert verify(path).status == "intact"
    path.write_text(path.read_text().replace('"old":2', '"old":8'))  # … but the last one is linked
    assert problem_of(verify(path)) == ("edited", "events.jsonl", 2)


def test_two_writers_sharing_one_rotating_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    logs = [EventLog(str(path), max_bytes=4096), EventLog(str(path), max_bytes=4096)]

    def writer(index: int) -> None:
        for number in range(150):
            logs[index].write({"writer": index, "n": number, "pad": PAD})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    report = verify(path)
    assert report.problem is None, str(report.problem)
    assert (report.status, report.lines) == ("intact", 300)
    assert len(report.files) > 5
    records = [json.loads(line) for f in report.files for line in read_lines(Path(f))]
    for index in range(2):
        assert [r["n"] for r in records if r["writer"] == index] == list(range(150))


def test_two_processes_sharing_one_rotating_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    code = (
        "import sys\nfrom aipolicy import EventLog\n"
        "log = EventLog(sys.argv[1], max_bytes=4096)\n"
        "for n in range(200):\n    log.write({'writer': sys.argv[2], 'n': n, 'pad': 'x' * 150})\n"
        "log.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    writers = [subprocess.Popen([sys.executable, "-c", code, str(path), str(index)], cwd=root) for index in range(2)]
    assert [writer.wait(60) for writer in writers] == [0, 0]
    report = verify(path)
    assert report.problem is None, str(report.problem)
    assert (report.status, report.lines) == ("intact", 400)
    records = [json.loads(line) for f in report.files for line in read_lines(Path(f))]
    for index in "01":
        assert [r["n"] for r in records if r["writer"] == index] == list(range(200))


def test_rotation_by_age(tmp_path: Path) -> None:
    now = [datetime.datetime(2026, 11, 30, 10, tzinfo=datetime.UTC).timestamp()]  # the events' ts
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path), max_age=3600, clock=lambda: now[0])
    for number in range(6):
        log.write(event(number))
        now[0] += 1800  # a new file every two events
    log.close()
    files = rotated_files(str(path))
    assert len(files) == 2
    assert [len(read_lines(Path(f))) for f in [*files, str(path)]] == [2, 2, 2]
    assert verify(path).status == "intact"


def test_a_leftover_plain_rotated_file_is_compressed_on_start(rotated: list[Path]) -> None:
    leftover = rotated[0].with_suffix("")
    write_lines(leftover, read_lines(rotated[0]))
    rotated[0].unlink()
    EventLog(str(rotated[-1])).close()
    assert not leftover.exists() and rotated[0].exists()
    assert verify(rotated[-1]).status == "intact"


def test_current_file_deleted_under_a_running_writer(rotated: list[Path]) -> None:
    current = rotated[-1]
    log = EventLog(str(current), max_bytes=1400)
    log.write(event(20))
    current.unlink()
    log.write(event(21))  # into a new file, linked to the deleted one's last line
    log.close()
    assert problem_of(verify(current)) == ("deleted", current.name, 1)


# --- tampering, within a file and across a rotation boundary -------------------------------


def test_intact_log(rotated: list[Path]) -> None:
    report = verify(rotated[-1])
    assert report.status == "intact" and report.problem is None and report.torn == []


def test_edited_line(rotated: list[Path]) -> None:
    current = rotated[-1]
    lines = read_lines(current)
    lines[0] = lines[0].replace(b'"action":"block"', b'"action":"allow"')
    write_lines(current, lines)
    assert problem_of(verify(current)) == ("edited", current.name, 1)


def test_edited_last_line_of_a_rotated_file(rotated: list[Path]) -> None:
    lines = read_lines(rotated[1])
    lines[-1] = lines[-1].replace(b'"action":"block"', b'"action":"allow"')
    write_lines(rotated[1], lines)
    assert problem_of(verify(rotated[-1])) == ("edited", rotated[1].name, len(lines))


def test_edited_line_that_lost_its_links(rotated: list[Path]) -> None:
    lines = read_lines(rotated[1])
    record = json.loads(lines[1])
    del record["seq"], record["prev"]
    lines[1] = json.dumps(record).encode() + b"\n"
    write_lines(rotated[1], lines)
    assert problem_of(verify(rotated[-1])) == ("edited", rotated[1].name, 2)


def test_deleted_line(rotated: list[Path]) -> None:
    lines = read_lines(rotated[1])
    del lines[1]
    write_lines(rotated[1], lines)
    report = verify(rotated[-1])
    assert problem_of(report) == ("deleted", rotated[1].name, 2)
    assert report.problem is not None and "1 line is missing" in report.problem.message


def test_deleted_last_lines_of_a_rotated_file(rotated: list[Path]) -> None:
    lines = read_lines(rotated[0])
    write_lines(rotated[0], lines[:-2])
    report = verify(rotated[-1])
    assert problem_of(report) == ("deleted", rotated[1].name, 1)
    assert report.problem is not None and "2 lines are missing" in report.problem.message


def test_deleted_rotated_file(rotated: list[Path]) -> None:
    rotated[1].unlink()
    assert problem_of(verify(rotated[-1])) == ("deleted", rotated[2].name, 1)


def test_deleted_start_of_the_chain(rotated: list[Path]) -> None:
    rotated[0].unlink()
    report = verify(rotated[-1])
    assert problem_of(report) == ("deleted", rotated[1].name, 1)
    assert report.problem is not None and "does not start here" in report.problem.message
    allowed = verify(rotated[-1], allow_partial_start=True)
    assert (allowed.status, allowed.partial_start) == ("intact", True)


def test_reordered_lines(rotated: list[Path]) -> None:
    lines = read_lines(rotated[-1])
    lines[0], lines[1] = lines[1], lines[0]
    write_lines(rotated[-1], lines)
    report = verify(rotated[-1])
    assert problem_of(report) == ("reordered", rotated[-1].name, 1)
    assert report.problem is not None and f"is at {rotated[-1]}:2" in report.problem.message


def test_reordered_across_a_rotation_boundary(rotated: list[Path]) -> None:
    first, second = read_lines(rotated[1]), read_lines(rotated[2])
    first[-1], second[0] = second[0], first[-1]
    write_lines(rotated[1], first)
    write_lines(rotated[2], second)
    report = verify(rotated[-1])
    assert problem_of(report) == ("reordered", rotated[1].name, len(first))
    assert report.problem is not None and f"is at {rotated[2]}:1" in report.problem.message


def test_rotated_files_renamed_out_of_order(rotated: list[Path]) -> None:
    a, b = rotated[1], rotated[2]
    a.rename(a.with_name("swap"))
    b.rename(a)
    a.with_name("swap").rename(b)
    assert verify(rotated[-1]).problem is not None
    assert problem_of(verify(rotated[-1]))[:2] == ("reordered", a.name)


def test_repeated_line(rotated: list[Path]) -> None:
    lines = read_lines(rotated[-1])
    write_lines(rotated[-1], [lines[0], lines[0], *lines[1:]])
    assert problem_of(verify(rotated[-1])) == ("reordered", rotated[-1].name, 2)


def test_truncated_line(rotated: list[Path]) -> None:
    lines = read_lines(rotated[1])
    lines[1] = lines[1][:40] + b"\n"
    write_lines(rotated[1], lines)
    assert problem_of(verify(rotated[-1])) == ("truncated", rotated[1].name, 2)


def test_truncated_last_line_of_a_rotated_file(rotated: list[Path]) -> None:
    lines = read_lines(rotated[1])
    lines[-1] = lines[-1][:40]  # cut short, line end and all
    write_lines(rotated[1], lines)
    assert problem_of(verify(rotated[-1])) == ("truncated", rotated[1].name, len(lines))


def test_truncated_compressed_file(rotated: list[Path]) -> None:
    data = rotated[1].read_bytes()
    rotated[1].write_bytes(data[: len(data) // 2])
    kind, name, _ = problem_of(verify(rotated[-1]))
    assert (kind, name) == ("truncated", rotated[1].name)


def test_torn_newest_line_is_not_tampering(rotated: list[Path]) -> None:
    current = rotated[-1]
    lines = read_lines(current)
    write_lines(current, [*lines[:-1], lines[-1][:50]])
    report = verify(current)
    assert report.status == "torn" and report.problem is None
    assert [(Path(t.file).name, t.line, t.acknowledged) for t in report.torn] == [(current.name, len(lines), False)]


def test_garbage_line_in_the_middle(rotated: list[Path]) -> None:
    lines = read_lines(rotated[2])
    lines.insert(1, b'{"forged": true}\n')
    write_lines(rotated[2], lines)
    assert problem_of(verify(rotated[-1])) == ("edited", rotated[2].name, 2)


def test_separate_logs_are_separate_chains(tmp_path: Path) -> None:
    write_log(tmp_path / "gw-1.jsonl", 5, max_bytes=1024)
    write_log(tmp_path / "gw-2.jsonl", 5, max_bytes=1024)
    reports = verify_logs([str(tmp_path / "*.jsonl*")])
    assert sorted((Path(r.log).name, r.status, r.lines) for r in reports) == [
        ("gw-1.jsonl", "intact", 5),
        ("gw-2.jsonl", "intact", 5),
    ]


# --- option values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    # K, M, G are powers of 1000 and KiB, MiB, GiB powers of 1024, as in a policy's quota bytes:
    # this option read 100K as 102,400 bytes before the grammar was one.
    [("0", 0), ("4096", 4096), ("100K", 100_000), ("100M", 100_000_000), ("1GiB", 1 << 30), ("2mb", 2_000_000)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_log_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_log_age(text) == seconds


def test_bad_size_and_duration() -> None:
    with pytest.raises(ValueError, match=r"'ten' is not a size \(examples: 0 for no limit, 1048576, 100M, 1G\)"):
        parse_log_size("ten")
    with pytest.raises(ValueError, match=r"'1y' is not a duration"):
        parse_log_age("1y")


# --- a head kept elsewhere -----------------------------------------------------------------------


def rewrite_chain(lines: list[bytes], start: int) -> list[bytes]:
    """What someone who knows the format can do: recompute every link from line ``start`` on."""
    out = list(lines)
    for index in range(max(start, 1), len(out)):
        record = json.loads(out[index])
        record["prev"] = line_hash(out[index - 1].rstrip(b"\n"))
        body = json.dumps({k: v for k, v in record.items() if k not in ("seq", "prev")}, separators=(",", ":"))
        out[index] = (body[:-1] + f',"seq":{record["seq"]},"prev":"{record["prev"]}"}}\n').encode()
    return out


def test_head_catches_lines_removed_from_the_end(tmp_path: Path) -> None:
    [path] = write_log(tmp_path / "events.jsonl", 6)
    head = verify(path).head_ref
    assert head.startswith("5:")
    write_log(path, 2)
    [report] = verify_logs([str(path)], head=head)
    assert report.status == "intact"
    write_lines(path, read_lines(path)[:4])
    assert verify(path).status == "intact"  # the chain alone cannot tell
    [report] = verify_logs([str(path)], head=head)
    assert problem_of(report) == ("deleted", "events.jsonl", 5)
    assert report.problem is not None and "ends at chain number 3" in report.problem.message


def test_head_catches_a_rewritten_chain(tmp_path: Path) -> None:
    [path] = write_log(tmp_path / "events.jsonl", 6)
    head = verify(path).head_ref
    lines = read_lines(path)
    lines[2] = lines[2].replace(b'"action":"block"', b'"action":"allow"')
    write_lines(path, rewrite_chain(lines, 3))
    assert verify(path).status == "intact"  # recomputed links hide the edit from the chain alone
    [report] = verify_logs([str(path)], head=head)
    assert problem_of(report) == ("edited", "events.jsonl", 6)
    assert report.problem is not None and "rewritten" in report.problem.message


def test_bad_head(tmp_path: Path) -> None:
    write_log(tmp_path / "a.jsonl", 1)
    write_log(tmp_path / "b.jsonl", 1)
    with pytest.raises(ValueError, match=r"'12:abc' is not a head: expected SEQ:HASH"):
        verify_logs([str(tmp_path / "a.jsonl")], head="12:abc")
    with pytest.raises(ValueError, match=r"a head belongs to one log, and 2 logs were given"):
        verify_logs([str(tmp_path / "*.jsonl")], head="0:" + "0" * 64)
