"""Fast bulk inserts: COPY on PostgreSQL, chunked executemany on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import Boolean, Connection, Float, Integer, LargeBinary, String, Table

# Rows per executemany call: large enough to amortize the call, small enough that
# one chunk of tuples stays a few MiB.
CHUNK_ROWS = 20_000

# PostgreSQL's binary COPY format: signature, flags, header extension length.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
# PostgreSQL types of the column types in backend.store.models, for binary COPY.
# Boolean comes before Integer because it is checked with isinstance.
POSTGRES_TYPES = (
    (Boolean, "bool"), (Integer, "int4"), (Float, "float8"), (LargeBinary, "bytea"),
    (String, "text"),
)
# Big-endian wire types of the column types numeric arrays can fill.
BINARY_TYPES = {"i": ">i4", "f": ">f8"}


def insert_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]
) -> int:
    """Insert tuples of `columns` into `table` in the connection's transaction.

    None in a tuple becomes NULL. Returns the number of rows inserted.
    """
    if connection.dialect.name == "postgresql":
        with _copy(connection, table, columns, binary=True) as copy:
            # Binary COPY sends bytea as raw bytes; text COPY would hex-encode them.
            copy.set_types([_postgres_type(table.c[column].type) for column in columns])
            count = 0
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    # SQLite: the driver's executemany on plain tuples. SQLAlchemy's per-row
    # parameter processing would cost more than the insert itself.
    quoted = ", ".join(f'"{column}"' for column in columns)
    placeholders = ", ".join("?" for _ in columns)
    statement = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({placeholders})'
    count = 0
    for chunk in chunks(rows, CHUNK_ROWS):
        connection.exec_driver_sql(statement, chunk)
        count += len(chunk)
    return count


def chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    """Yield lists of `size` rows, the last one shorter if the rows run out."""
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def insert_arrays(connection: Connection, table: Table, arrays: dict[str, np.ndarray]) -> int:
    """Insert equal-length numeric arrays, one per column. NaN becomes NULL.

    Integer arrays must fit a 32-bit INTEGER column and float arrays a DOUBLE one.
    Returns the number of rows inserted.
    """
    columns = list(arrays)
    count = len(arrays[columns[0]])
    if count == 0:
        return 0
    if connection.dialect.name == "postgresql":
        with _copy(connection, table, columns, binary=True) as copy:
            copy.write(COPY_HEADER)
            for buffer in _binary_rows(arrays):
                copy.write(buffer)
            copy.write(COPY_TRAILER)
        return count

    lists = [python_values(array) for array in arrays.values()]
    return insert_rows(connection, table, columns, zip(*lists))


def _copy(connection, table: Table, columns: Sequence[str], binary: bool):
    # The psycopg connection under SQLAlchemy's, so COPY joins the same transaction.
    cursor = connection.connection.driver_connection.cursor()
    quoted = ", ".join(f'"{column}"' for column in columns)
    options = " (FORMAT BINARY)" if binary else ""
    return cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN{options}')


def _postgres_type(column_type) -> str:
    """Return the PostgreSQL type name that binary COPY uses for a SQLAlchemy column type."""
    for sqlalchemy_type, name in POSTGRES_TYPES:
        if isinstance(column_type, sqlalchemy_type):
            return name
    raise TypeError(f"no binary COPY type for column type {column_type!r}")


def python_values(array: np.ndarray) -> list:
    """Return the values as Python numbers, with None where a float is NaN."""
    if not np.issubdtype(array.dtype, np.floating):
        return array.tolist()
    values = array.astype(np.float64).astype(object)
    values[np.isnan(array)] = None
    return values.tolist()


def _binary_rows(arrays: dict[str, np.ndarray], chunk_rows: int = 100_000):
    """Yield binary COPY tuples, built with structured NumPy arrays.

    A NULL field has length -1 and no data, so rows with NULLs in different
    columns need different record layouts: rows are grouped by which float
    columns are NaN, and each group is encoded with its own layout.
    """
    floats = [name for name, array in arrays.items() if array.dtype.kind == "f"]
    count = len(next(iter(arrays.values())))
    pattern = np.zeros(count, dtype=np.int64)
    for bit, name in enumerate(floats):
        pattern |= np.isnan(arrays[name]).astype(np.int64) << bit

    for value in np.unique(pattern):
        null = {name for bit, name in enumerate(floats) if value >> bit & 1}
        layout = [("fields", ">i2")]
        for name, array in arrays.items():
            layout.append((f"{name}_length", ">i4"))
            if name not in null:
                layout.append((name, BINARY_TYPES[array.dtype.kind]))
        rows = np.flatnonzero(pattern == value)
        for start in range(0, len(rows), chunk_rows):
            selected = rows[start:start + chunk_rows]
            record = np.empty(len(selected), dtype=layout)
            record["fields"] = len(arrays)
            for name, array in arrays.items():
                if name in null:
                    record[f"{name}_length"] = -1
                else:
                    record[f"{name}_length"] = record.dtype[name].itemsize
                    record[name] = array[selected]
            yield record.tobytes()
