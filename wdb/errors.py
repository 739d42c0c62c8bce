"""Named errors that the CLI turns into one-line messages."""


class WdbError(Exception):
    """Base class: a user-facing problem with a message that says what to do."""


class NoInputs(WdbError):
    """No archive matched the inputs given."""


class MigrationFailed(WdbError):
    """A migration failed; the database was left as it was before it."""


class Interrupted(WdbError):
    """SIGINT or SIGTERM stopped a run; what was committed is kept and a re-run resumes."""


class DiskFull(WdbError):
    """The disk (or a file size limit) is full; what was committed is kept and a re-run resumes."""


class BadParameter(WdbError):
    """A query or recipe parameter of the wrong type or missing."""


class ModelLoadError(WdbError):
    """A model could not be loaded (unknown name, missing weights, download impossible offline)."""


class PointerMismatch(WdbError):
    """Bytes read back through a pointer do not have the sha256 recorded for them."""


class SpanRunError(WdbError):
    """A span-extractor run that cannot be trained, predicted or evaluated as asked."""


class QueryError(WdbError):
    """A query could not run: an SQL error, or figures that `wdb index` has to bring up to date."""
