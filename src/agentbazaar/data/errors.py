"""Errors of the data layer (all under ``DataError``).

DataError                  400
├── BadCid                 400  text or bytes that are not a CID we can use (CIDv1/v0, sha2-256)
├── PathError              400  a path that cannot be content-addressed (missing, a symlink, ...)
├── ContentChanged         409  a file changed (size, mtime, inode) while it was being hashed
├── CidMismatch            422  bytes or a block that do not hash to the CID they should have
├── DagError               422  a block that is not a valid dag-pb / UnixFS node, or out of order
├── LicenceError           400  unknown licence template, bad terms, missing or wrong acceptance
│   └── LicenceNotAccepted 403  no acceptance, or one not matching dataset, licence, buyer, price
├── ContributionError      422  a contribution file or schema that cannot be read
├── LineageError           400  a receipt or CID that lineage cannot follow
├── DatasetInputError      400  dataset terms the registry would refuse (also an InputError)
└── UnknownDataset         404  no dataset with that id in the registry
"""

from __future__ import annotations

from agentbazaar.errors import DataError, InputError


class BadCid(DataError):
    pass


class PathError(DataError):
    pass


class ContentChanged(DataError):
    http_status = 409


class CidMismatch(DataError):
    http_status = 422


class DagError(DataError):
    http_status = 422


class LicenceError(DataError):
    pass


class ContributionError(DataError):
    http_status = 422


class LineageError(DataError):
    pass


class LicenceNotAccepted(LicenceError):
    """No acceptance, or one that does not match the dataset, licence, buyer or price."""

    http_status = 403


class DatasetInputError(DataError, InputError):
    """Dataset terms the registry would refuse; nothing was signed."""


class UnknownDataset(DataError):
    http_status = 404
