"""Building the CSV files ``hawiya users import`` reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from idp.accounts.importer import COLUMNS


def people_csv(
    rows: Iterable[Mapping[str, str]], *, columns: Iterable[str] = COLUMNS, bom: bool = False
) -> bytes:
    """A UTF-8 file with a header of ``columns`` and one line per row (missing values empty)."""
    names = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([row.get(name, "") for name in names])
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()
