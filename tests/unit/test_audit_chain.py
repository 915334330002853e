"""The audit log is tamper-evident: each kind of tampering is detected by `audit verify` and located (line and
sequence number); an intact log verifies; a torn last line is reported, tolerated, and never appended onto."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from facesearch.audit import AuditRecord, ChainedAuditSink, JsonlAuditSink, JsonlCheckpointStore, MemoryAuditSink
from facesearch.audit.chain import AuditKeyError, compute_mac, load_key
from facesearch.audit.verify import verify
from facesearch.cli import main

KEY = b"test-key-0123456789abcdef"


def record(n: int) -> AuditRecord:
    return AuditRecord(operation="SearchFaces", caller=f"user{n}", collection_id="c", threshold=90.0)


def write_log(tmp_path: Path, count: int = 12, every: int = 5) -> tuple[JsonlAuditSink, JsonlCheckpointStore]:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    checkpoints = JsonlCheckpointStore(tmp_path / "audit.checkpoints.jsonl", KEY)
    chained = ChainedAuditSink(sink, KEY, checkpoints=checkpoints, checkpoint_every=every)
    for n in range(count):
        chained.write(record(n))
    return sink, checkpoints


def lines(sink: JsonlAuditSink) -> list[str]:
    return sink.path.read_text().splitlines(keepends=True)


def rewrite(sink: JsonlAuditSink, new: list[str]) -> None:
    sink.path.write_text("".join(new))


def findings(
    sink: JsonlAuditSink, checkpoints: JsonlCheckpointStore | None = None
) -> list[tuple[str, int | None, int | None]]:
    return [(f.kind, f.line, f.seq) for f in verify(sink.scan(), KEY, checkpoints).findings]


def test_an_intact_log_verifies(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    report = verify(sink.scan(), KEY, checkpoints)
    assert report.ok and report.records == 12 and list(report.chains.values()) == [12]
    assert [e["seq"] for _, e in checkpoints.read()] == [5, 10]


def test_records_carry_sequence_previous_hash_and_mac(tmp_path):
    sink, _ = write_log(tmp_path, count=3)
    recs = list(sink.read())
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert recs[0]["prev"] == "0" * 64 and recs[1]["prev"] == recs[0]["mac"] and recs[2]["prev"] == recs[1]["mac"]
    assert len({r["chain"] for r in recs}) == 1


def test_a_chain_continues_across_writers(tmp_path):
    """Each CLI run is a new process: it picks up the head from the file instead of starting over."""
    write_log(tmp_path, count=3)
    sink, checkpoints = write_log(tmp_path, count=3)
    assert [r["seq"] for r in sink.read()] == [1, 2, 3, 4, 5, 6]
    assert verify(sink.scan(), KEY, checkpoints).ok


def test_a_deleted_line_is_detected_and_located(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    log = lines(sink)
    rewrite(sink, log[:3] + log[4:])  # seq 4 gone
    assert findings(sink, checkpoints) == [("deleted", 4, 5)]
    assert "seq 4 missing between line 3" in str(verify(sink.scan(), KEY).findings[0])


def test_an_edited_field_is_detected_and_located(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    log = lines(sink)
    rec = json.loads(log[6])
    rec["threshold"] = 0.0  # "nobody searched at threshold 0"
    log[6] = json.dumps(rec, sort_keys=True) + "\n"
    rewrite(sink, log)
    assert findings(sink, checkpoints) == [("modified", 7, 7)]


def test_a_reordered_pair_is_detected_and_located(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    log = lines(sink)
    log[7], log[8] = log[8], log[7]
    rewrite(sink, log)
    assert findings(sink, checkpoints) == [("reordered", 9, 8)]


def test_a_truncated_file_is_detected(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    rewrite(sink, lines(sink)[:7])  # cut cleanly after seq 7: a valid, shorter chain
    assert findings(sink, checkpoints) == [("truncated", None, 10)]


def test_a_cut_through_a_record_is_a_torn_line_and_truncation(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    data = sink.path.read_bytes()
    sink.path.write_bytes(data[: len(data) - 40])
    assert findings(sink, checkpoints) == [("torn", 12, None)]


def test_a_deleted_log_is_detected_from_its_checkpoints(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    sink.path.unlink()
    assert [k for k, _, _ in findings(sink, checkpoints)] == ["truncated"]


def test_a_record_forged_without_the_key_is_detected_and_located(tmp_path):
    sink, checkpoints = write_log(tmp_path)
    last = json.loads(lines(sink)[-1])
    forged = {**last, "caller": "nobody", "seq": last["seq"] + 1, "prev": last["mac"]}
    forged["mac"] = compute_mac(b"a guessed key", forged)
    with sink.path.open("a") as f:
        f.write(json.dumps(forged, sort_keys=True) + "\n")
    assert findings(sink, checkpoints) == [("forged", 13, 13)]


def test_deleted_or_rolled_back_checkpoints_are_detected(tmp_path):
    sink, checkpoints = write_log(tmp_path)  # checkpoints at 5 and 10
    assert verify(sink.scan(), KEY, checkpoints, checkpoint_every=5).ok
    rolled_back = checkpoints.path.read_text().splitlines(keepends=True)[:1]
    checkpoints.path.write_text("".join(rolled_back))
    assert findings_every(sink, checkpoints, 5) == [("checkpoint-missing", None, 10)]
    checkpoints.path.unlink()
    assert findings_every(sink, checkpoints, 5) == [("checkpoint-missing", None, 10)]


def findings_every(sink: JsonlAuditSink, checkpoints: JsonlCheckpointStore, every: int) -> list[tuple]:
    return [(f.kind, f.line, f.seq) for f in verify(sink.scan(), KEY, checkpoints, every).findings]


def test_a_replayed_record_is_a_duplicate(tmp_path):
    sink, _ = write_log(tmp_path)
    log = lines(sink)
    rewrite(sink, [*log, log[2]])
    assert findings(sink) == [("duplicated", 13, 3)]


def test_a_rewritten_checkpointed_record_is_detected(tmp_path):
    """A forger with the key who rewrites history still disagrees with the checkpoint taken before."""
    sink, checkpoints = write_log(tmp_path, count=5)
    rewrite(sink, lines(sink)[:4])
    ChainedAuditSink(sink, KEY).write(record(99))  # a different seq 5
    assert ("rewritten", 5, 5) in findings(sink, checkpoints)


def test_the_reader_tolerates_a_torn_last_line_and_the_writer_never_appends_onto_it(tmp_path):
    sink, checkpoints = write_log(tmp_path, count=3)
    with sink.path.open("a") as f:
        f.write('{"operation": "SearchFa')  # a crash mid-write
    assert [r["seq"] for r in sink.read()] == [1, 2, 3]
    assert findings(sink, checkpoints) == [("torn", 4, None)]

    ChainedAuditSink(sink, KEY, checkpoints=checkpoints).write(record(4))
    raw = lines(sink)
    assert raw[3] == '{"operation": "SearchFa\n'  # the fragment stays visible, on its own line
    assert [r["seq"] for r in sink.read()] == [1, 2, 3, 4]  # the chain continues from the last whole record
    assert findings(sink, checkpoints) == [("corrupt", 4, None)]


def test_a_sink_without_a_head_keeps_its_own_chain():
    """Any sink (S3, memory) can be sealed: the head is kept in memory, a chain per writer."""
    inner = MemoryAuditSink()
    chained = ChainedAuditSink(inner, KEY)
    for n in range(3):
        chained.write(record(n))
    assert [r.seq for r in inner.records] == [1, 2, 3]
    assert inner.records[2].prev == inner.records[1].mac


def test_a_wrong_key_is_reported_as_such(tmp_path):
    sink, _ = write_log(tmp_path, count=2)
    assert {f.kind for f in verify(sink.scan(), b"other key").findings} == {"wrong-key"}


def test_the_key_file_is_created_private_and_refused_when_others_can_read_it(tmp_path):
    key = load_key(key=None, home=tmp_path)
    path = tmp_path / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_key(key=None, home=tmp_path) == key
    os.chmod(path, 0o644)
    with pytest.raises(AuditKeyError, match="readable by others"):
        load_key(key=None, home=tmp_path)
    with pytest.raises(AuditKeyError, match="no audit key"):
        load_key(key=None, home=tmp_path / "elsewhere", create=False)


def test_cli_audit_verify_exit_codes(tmp_path, capsys):
    home = ["--data-dir", str(tmp_path)]
    assert main(["collection", "create", "c", *home]) == 0
    assert main(["audit", "verify", *home]) == 0
    assert main(["audit", "checkpoint", *home]) == 0
    [(_, checkpoint)] = JsonlCheckpointStore(tmp_path / "audit.checkpoints.jsonl", KEY).read()
    assert checkpoint["seq"] == 2  # CreateCollection's intent and outcome
    log = tmp_path / "audit.jsonl"
    text = log.read_text().splitlines(keepends=True)
    log.write_text(text[0].replace('"caller": "', '"caller": "x') + "".join(text[1:]))
    capsys.readouterr()
    assert main(["audit", "verify", "--json", *home]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["findings"][0]["kind"] == "modified" and report["findings"][0]["line"] == 1
