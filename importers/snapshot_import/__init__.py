"""Import a register snapshot in bulk, through the one write path of every live look-up.

Each registration number in the snapshot becomes one ``LookupResult`` (outcome ``ok``,
``observed_at`` = the snapshot's date, source ``snapshot:<file name>``) and is applied by
the one entry point for register answers, ``directory.registry.recording``: its batch
writer decides each through ``checks.decide`` exactly as a live answer would and writes a
batch of numbers per transaction with bulk statements. This package reads and checks the
file and feeds that writer; it writes nothing itself.

Two passes over the file, so memory stays bounded whatever its size or order:

1. ``scan`` (``digest.py``): read and validate every row once (``rows.py``) and keep a
   compact digest per number: how many distinct rows it has, which rows repeat another
   exactly and which contradict each other (``rules.py``). A file that turns out not to be a
   snapshot (say, an undecodable byte near the end) fails here, before anything is written.
   The rows read are kept, as plain tuples in a temporary file, for pass 2.
2. ``SnapshotImporter.run`` (``importer.py``): go through those rows again; a number whose
   rows are all adjacent (the usual case) is grouped in memory; rows of numbers scattered
   through the file wait in a temporary SQLite file (``spill.py``) until the end. Complete
   groups become register answers (``rows.snapshot_answer``, with their response digest)
   and are applied in batches by ``recording.BatchWriter``, in this process or in forked
   worker processes (``workers.py``), each batch committed on its own.
"""

from importers.snapshot_import.digest import Digest, number_key, scan
from importers.snapshot_import.importer import BATCH_ROWS, ImportSummary, Note, SnapshotImporter
from importers.snapshot_import.rows import ReadGroup, _ReadRows, response_digest, snapshot_answer
from importers.snapshot_import.workers import (
    WORKER_WAL_AUTOCHECKPOINT,
    BatchFailed,
    _rare_collections,
)

__all__ = [
    "BATCH_ROWS",
    "WORKER_WAL_AUTOCHECKPOINT",
    "BatchFailed",
    "Digest",
    "ImportSummary",
    "Note",
    "ReadGroup",
    "SnapshotImporter",
    "_ReadRows",
    "_rare_collections",
    "number_key",
    "response_digest",
    "scan",
    "snapshot_answer",
]
