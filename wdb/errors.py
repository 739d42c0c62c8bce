"""Named errors that the CLI turns into one-line messages."""


class WdbError(Exception):
    """Base class: a user-facing problem with a message that says what to do."""


class NoInputs(WdbError):
    """No archive matched the inputs given."""


class MigrationFailed(WdbError):
    """A migration failed; the database was left as it was before it."""
