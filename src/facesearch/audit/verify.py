"""``facesearch audit verify``: check a sealed audit log against its key and checkpoints, and say where it breaks.

Each finding names its kind and where it is (line number in the log, sequence number in the chain):

- ``torn``: the last line is incomplete (a crash during a write, or a cut through a record);
- ``corrupt``: a line that is not a JSON record;
- ``unsealed``: a record without chain fields (written before sealing was enabled, or inserted by hand);
- ``wrong-key``: a record sealed with another key than the one given;
- ``modified``: a record's MAC does not verify but the next record still links to it — a field was edited;
- ``forged``: a record whose MAC does not verify and that nothing links to — written without the key;
- ``deleted``: sequence numbers missing from the chain (between two located records, or at its start);
- ``reordered``: a record that comes after a record with a higher sequence number;
- ``duplicated``: the same sequence number twice (a replayed record);
- ``broken-link``: a record whose ``prev`` is not the MAC of the record before it;
- ``truncated``: the log ends before a checkpointed head, or a checkpointed chain is missing;
- ``rewritten``: the record at a checkpointed sequence number is not the one that was checkpointed;
- ``checkpoint-forged``: a checkpoint whose own MAC does not verify;
- ``checkpoint-missing``: the log passed a sequence number at which a checkpoint must have been written, and the
  checkpoint store has none (checkpoints deleted or rolled back to an older copy).
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from facesearch.audit.chain import GENESIS, JsonlCheckpointStore, compute_mac, key_id
from facesearch.audit.sinks import LogLine


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            x for x in (f"line {self.line}" if self.line else "", f"seq {self.seq}" if self.seq else "") if x
        )
        return f"{self.kind:<17} {where or '-':<22} {self.message}"


@dataclass
class Report:
    records: int = 0
    chains: dict[str, int] = field(default_factory=dict)  # chain id -> highest verified seq
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "chains": self.chains,
            "findings": [f.__dict__ for f in self.findings],
        }


def verify(
    lines: Iterable[LogLine],
    key: bytes,
    checkpoints: JsonlCheckpointStore | None = None,
    checkpoint_every: int | None = None,
) -> Report:
    """Check every line; with ``checkpoints`` also truncation and rewriting, with ``checkpoint_every`` (the
    writer's setting) also checkpoints that should exist and do not."""
    report = Report()
    add = report.findings.append
    kid = key_id(key)
    sealed: list[tuple[int, dict[str, Any], bool]] = []  # (line, record, mac ok)
    for line in lines:
        rec = line.record
        if line.torn:
            add(Finding("torn", line.number, _seq(rec), "the last line is incomplete (interrupted write or cut)"))
            continue
        if rec is None:
            add(Finding("corrupt", line.number, None, "not a JSON record"))
            continue
        report.records += 1
        if not isinstance(rec.get("seq"), int) or not rec.get("mac") or not rec.get("chain"):
            add(Finding("unsealed", line.number, None, f"{rec.get('operation')} record without chain fields"))
            continue
        if rec.get("key_id") != kid:
            add(Finding("wrong-key", line.number, rec["seq"], f"sealed with key {rec.get('key_id')}, not {kid}"))
            continue
        ok = hmac.compare_digest(str(rec["mac"]), compute_mac(key, rec))
        sealed.append((line.number, rec, ok))

    by_chain: dict[str, list[tuple[int, dict[str, Any], bool]]] = defaultdict(list)
    for item in sealed:
        by_chain[str(item[1]["chain"])].append(item)
    for chain, items in by_chain.items():
        report.chains[chain] = _verify_chain(items, add)

    if checkpoints is not None:
        latest = _verify_checkpoints(checkpoints, by_chain, report, add)
        if checkpoint_every:
            for chain, head in report.chains.items():
                expected = head // checkpoint_every * checkpoint_every
                have = latest.get(chain, 0)
                if expected and have < expected:
                    add(
                        Finding(
                            "checkpoint-missing",
                            None,
                            expected,
                            f"the log reached seq {head}, so a checkpoint at seq {expected} must exist; the latest "
                            f"in {checkpoints.path} is {have or 'none'} (checkpoints deleted or rolled back)",
                        )
                    )
    return report


def _seq(rec: dict[str, Any] | None) -> int | None:
    seq = rec.get("seq") if rec else None
    return seq if isinstance(seq, int) else None


def _verify_chain(items: list[tuple[int, dict[str, Any], bool]], add: Any) -> int:
    linked_to = {str(rec["prev"]) for _, rec, ok in items if ok}
    good: list[tuple[int, dict[str, Any]]] = []
    occupied: set[int] = set()  # seqs held by a record, even a tampered one (so an edit is not also a deletion)
    for number, rec, ok in items:
        if ok:
            good.append((number, rec))
        elif str(rec["mac"]) in linked_to:
            add(
                Finding(
                    "modified", number, rec["seq"], f"{rec.get('operation')} record edited: its MAC does not verify"
                )
            )
            occupied.add(rec["seq"])
        else:
            add(Finding("forged", number, rec["seq"], f"{rec.get('operation')} record not written with the key"))

    # file order: every record must come after the ones before it in the chain
    highest: tuple[int, int] | None = None  # (seq, line)
    first_line: dict[int, int] = {}
    for number, rec in good:
        seq = rec["seq"]
        if seq in first_line:
            add(Finding("duplicated", number, seq, f"sequence number already used on line {first_line[seq]}"))
            continue
        first_line[seq] = number
        if highest and seq < highest[0]:
            add(Finding("reordered", number, seq, f"comes after line {highest[1]} (seq {highest[0]})"))
        if not highest or seq > highest[0]:
            highest = (seq, number)

    chain = sorted({rec["seq"]: (number, rec) for number, rec in good if first_line[rec["seq"]] == number}.items())
    previous: tuple[int, dict[str, Any]] | None = None
    for seq, (number, rec) in chain:
        if previous is None:
            if seq != 1:
                missing = [s for s in range(1, seq) if s not in occupied]
                if missing:
                    add(Finding("deleted", number, seq, f"seq {_span(missing)} missing before the first record"))
            elif rec["prev"] != GENESIS:
                add(Finding("broken-link", number, seq, "first record does not start the chain"))
        else:
            pnum, prec = previous
            if seq != prec["seq"] + 1:
                missing = [s for s in range(prec["seq"] + 1, seq) if s not in occupied]
                if missing:
                    add(
                        Finding(
                            "deleted",
                            number,
                            seq,
                            f"seq {_span(missing)} missing between line {pnum} (seq {prec['seq']}) and this record",
                        )
                    )
            elif rec["prev"] != prec["mac"]:
                add(Finding("broken-link", number, seq, f"does not link to line {pnum} (seq {prec['seq']})"))
        previous = (number, rec)
    return chain[-1][0] if chain else 0


def _span(seqs: list[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}..{seqs[-1]}"


def _verify_checkpoints(
    store: JsonlCheckpointStore,
    by_chain: dict[str, list[tuple[int, dict[str, Any], bool]]],
    report: Report,
    add: Any,
) -> dict[str, int]:
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for number, entry in store.read():
        if entry is None or not store.valid(entry):
            add(Finding("checkpoint-forged", None, None, f"{store.path} line {number}: checkpoint MAC does not verify"))
            continue
        chain, seq = str(entry["chain"]), int(entry["seq"])
        if chain not in latest or seq > latest[chain][1]["seq"]:
            latest[chain] = (number, entry)
        records = {rec["seq"]: (n, rec) for n, rec, ok in by_chain.get(chain, []) if ok}
        if seq in records and records[seq][1]["mac"] != entry["mac"]:
            n = records[seq][0]
            add(Finding("rewritten", n, seq, f"differs from the record checkpointed at {entry['time']}"))
    for chain, (_, entry) in latest.items():
        seq = int(entry["seq"])
        if chain not in by_chain:
            add(Finding("truncated", None, seq, f"chain {chain} checkpointed at seq {seq} is missing from the log"))
        elif report.chains.get(chain, 0) < seq:
            have = report.chains.get(chain, 0)
            add(
                Finding(
                    "truncated",
                    None,
                    seq,
                    f"the log ends at seq {have} but the checkpoint of {entry['time']} recorded seq {seq}",
                )
            )
    return {chain: int(entry["seq"]) for chain, (_, entry) in latest.items()}
