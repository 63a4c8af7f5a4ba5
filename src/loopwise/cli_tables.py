"""Tables that stay readable in a narrow terminal.

A rich table wider than the terminal squeezes its columns and cuts words to ``cont…``. When a
table's natural width does not fit, :func:`print_table` prints it stacked instead: one block per
row, headed by the row's first cell, with one ``column  value`` line per other column.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text


def fits(table: Table, console: Console) -> bool:
    """Whether every cell of ``table`` shows in full on ``console``."""
    unbounded = console.options.update_width(1_000_000)  # measure without squeezing
    return Measurement.get(console, unbounded, table).maximum <= console.width


def print_table(table: Table, console: Console) -> None:
    """``table`` as is when it fits the console's width, else :func:`stacked`."""
    console.print(table if fits(table, console) else stacked(table))


def stacked(table: Table) -> RenderableType:
    """The rows of ``table`` as blocks: the first cell as a heading, then each other column's
    header and value on a line (values wrap; headers never do)."""
    columns = table.columns
    cells = [list(column.cells) for column in columns]
    parts: list[RenderableType] = []
    if table.title:
        parts.append(_text(table.title, "italic"))
    for row in range(table.row_count):
        heading = cells[0][row] if columns else Text("")
        block = Table.grid(padding=(0, 2))
        block.add_column(no_wrap=True, style="dim")
        block.add_column(overflow="fold")
        for index, column in enumerate(columns[1:], start=1):
            value = cells[index][row]
            if value != "":
                block.add_row(column.header, value)
        parts.append(Text.assemble((f"{columns[0].header}: ", "dim"), _text(heading, "bold")))
        parts.append(Padding(block, (0, 0, 0, 2), expand=False))
    return Group(*parts)


def _text(value: RenderableType, style: str) -> Text:
    text = value.copy() if isinstance(value, Text) else Text(str(value))
    text.stylize(style)
    return text
