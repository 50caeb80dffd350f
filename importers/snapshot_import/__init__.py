"""Import a register snapshot in bulk, through the same rules as every live look-up.

Each registration number in the snapshot becomes one ``LookupResult`` (outcome ``ok``,
``observed_at`` = the snapshot's date, source ``snapshot:<file name>``) and goes through
``checks.decide`` exactly as a live answer would; the decisions are applied with bulk
statements, a batch of numbers per transaction.

Two passes over the file, so memory stays bounded whatever its size or order:

1. ``scan`` (``digest.py``): read and validate every row once (``rows.py``) and keep a
   compact digest per number: how many distinct rows it has, which rows repeat another
   exactly and which contradict each other (``rules.py``). A file that turns out not to be a
   snapshot (say, an undecodable byte near the end) fails here, before anything is written.
   The rows read are kept, as plain tuples in a temporary file, for pass 2.
2. ``SnapshotImporter.run`` (``importer.py``): go through those rows again; a number whose
   rows are all adjacent (the usual case) is grouped in memory; rows of numbers scattered
   through the file wait in a temporary SQLite file (``spill.py``) until the end. Complete
   groups are decided and written in batches (``batch.py``, with the statements of
   ``sql.py``), in this process or in forked worker processes (``workers.py``), each batch
   committed on its own.
"""

from importers.snapshot_import.batch import BatchWriter, GroupOutcome
from importers.snapshot_import.digest import Digest, number_key, scan
from importers.snapshot_import.importer import BATCH_ROWS, ImportSummary, Note, SnapshotImporter
from importers.snapshot_import.rows import Group, ReadGroup, _ReadRows
from importers.snapshot_import.sql import (
    BELIEF_COLUMNS,
    CATEGORIES,
    CATEGORY_COLUMNS,
    CHECK_COLUMNS,
    EVENTS,
    PRACTITIONER_INSERT_COLUMNS,
    PRACTITIONER_UPDATE_COLUMNS,
    PRACTITIONERS,
    _DriverStatement,
    _Statements,
)
from importers.snapshot_import.workers import (
    WORKER_WAL_AUTOCHECKPOINT,
    BatchFailed,
    _rare_collections,
)

__all__ = [
    "BATCH_ROWS",
    "BELIEF_COLUMNS",
    "CATEGORIES",
    "CATEGORY_COLUMNS",
    "CHECK_COLUMNS",
    "EVENTS",
    "PRACTITIONERS",
    "PRACTITIONER_INSERT_COLUMNS",
    "PRACTITIONER_UPDATE_COLUMNS",
    "WORKER_WAL_AUTOCHECKPOINT",
    "BatchFailed",
    "BatchWriter",
    "Digest",
    "Group",
    "GroupOutcome",
    "ImportSummary",
    "Note",
    "ReadGroup",
    "SnapshotImporter",
    "_DriverStatement",
    "_ReadRows",
    "_Statements",
    "_rare_collections",
    "number_key",
    "scan",
]
