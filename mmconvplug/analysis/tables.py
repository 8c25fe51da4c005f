"""Text and Markdown tables (prettytable), for terminals, logs and READMEs."""
from typing import Any, Optional, Sequence

from prettytable import PrettyTable

try:  # prettytable >= 3.12
    from prettytable import TableStyle
    MARKDOWN, PLAIN_COLUMNS = TableStyle.MARKDOWN, TableStyle.PLAIN_COLUMNS
except ImportError:
    from prettytable import MARKDOWN, PLAIN_COLUMNS


def format_table(header: Sequence[str],
                 rows: Sequence[Sequence[Any]],
                 markdown: bool = False,
                 align_first_left: bool = True,
                 title: Optional[str] = None,
                 plain: bool = False) -> str:
    """A table of ``rows`` under ``header``.

    Args:
        header (Sequence[str]): Column names (unique).
        rows (Sequence[Sequence]): One sequence per row, formatted with
            ``str`` (format numbers before passing them).
        markdown (bool): A GitHub Markdown table instead of a boxed text
            one. Defaults to False.
        align_first_left (bool): First column left-aligned, the others
            right-aligned (names, then numbers). Defaults to True.
        title (str, optional): A title line above a text table. Defaults
            to None.
        plain (bool): Columns separated by spaces, no borders (easy to
            parse from a log). Defaults to False.

    Returns:
        str: The table.

    Raises:
        ValueError: a row's length differs from the header's.
    """
    table = PrettyTable(list(header))
    for row in rows:
        if len(row) != len(header):
            raise ValueError(
                f'format_table: row {list(row)} has {len(row)} cells, the '
                f'header {list(header)} has {len(header)}.')
        table.add_row([str(cell) for cell in row])
    table.align = 'r'
    if align_first_left:
        table.align[header[0]] = 'l'
    if markdown:
        table.set_style(MARKDOWN)
    elif plain:
        table.set_style(PLAIN_COLUMNS)
    elif title:
        table.title = title
    return table.get_string()

