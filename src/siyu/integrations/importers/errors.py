"""Why an import cannot start (as opposed to a row that is rejected)."""

from __future__ import annotations

from siyu.core.errors import ValidationError


class ImportSetupError(ValidationError):
    """The file, preset, mapping or options make the whole import impossible.

    The CLI prints the message and exits non-zero; the console shows it on the form. Nothing
    has been written when this is raised before the first chunk; a decoding error found later
    leaves the chunks before it committed (re-importing the fixed file is idempotent).
    """

    code = "import_setup"
