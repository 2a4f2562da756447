"""What every asset in the catalog carries besides its data: owners and a link to its source."""

import inspect
import warnings

from dagster import (
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    with_source_code_references,
)

OWNERS = ["team:invoice-pipelines"]


def defined_here() -> dict:
    """Metadata linking an AssetSpec to the line that defines it ("View source" in the UI).

    Assets defined by a function get this from `with_source_code_references` in definitions.py;
    an external AssetSpec has no function, so it points at its own definition instead.
    """
    caller = inspect.stack()[1]
    # code references are beta in 1.13: without this, the warning is printed into every run's log
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        reference = LocalFileCodeReference(file_path=caller.filename, line_number=caller.lineno)
        return {"dagster/code_references": CodeReferencesMetadataValue(code_references=[reference])}


def with_code_references(assets: list) -> list:
    """Assets defined by a function, linked to it (the beta warning silenced as above)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return with_source_code_references(assets)
