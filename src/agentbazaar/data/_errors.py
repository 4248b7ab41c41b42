"""Errors of the data layer (all under ``DataError``).

DataError
├── BadCid                 text or bytes that are not a CID we can use (CIDv1/v0, sha2-256)
├── PathError              a path that cannot be content-addressed (missing, a symlink, a device)
├── ContentChanged         a file changed (size, mtime, inode) while it was being hashed
├── CidMismatch            bytes or a block that do not hash to the CID they should have
├── DagError               a block that is not a valid dag-pb / UnixFS node, or a DAG out of order
├── LicenceError           unknown licence template, bad terms, missing or wrong acceptance
├── ContributionError      a contribution file or schema that cannot be read
└── LineageError           a receipt or CID that lineage cannot follow
"""

from __future__ import annotations

from agentbazaar.errors import DataError


class BadCid(DataError):
    pass


class PathError(DataError):
    pass


class ContentChanged(DataError):
    pass


class CidMismatch(DataError):
    pass


class DagError(DataError):
    pass


class LicenceError(DataError):
    pass


class ContributionError(DataError):
    pass


class LineageError(DataError):
    pass
