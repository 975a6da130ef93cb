"""Tables as numpy columns: built from chunks, sorted, numbered with ids."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Table = dict[str, np.ndarray]  # column name -> values, in the DDL's column order


class Rows:
    """One table built from column chunks (typed; scalars are broadcast)."""

    def __init__(self, **dtypes: str) -> None:
        self._dtypes = dtypes
        self._chunks: dict[str, list[np.ndarray]] = {column: [] for column in dtypes}

    def add(self, **values: object) -> None:
        n = max(len(v) for v in values.values() if np.ndim(v) == 1)  # type: ignore[arg-type]
        for column, dtype in self._dtypes.items():
            value = values[column]
            if np.ndim(value) == 0:
                chunk = np.empty(n, dtype=dtype)
                chunk[...] = value
            else:
                chunk = np.asarray(value, dtype=dtype)
            self._chunks[column].append(chunk)

    def build(self) -> Table:
        return {
            column: np.concatenate(chunks) if chunks else np.empty(0, self._dtypes[column])
            for column, chunks in self._chunks.items()
        }


def objects(values: Iterable[object]) -> np.ndarray:
    """A 1-d object array (of Python str, which sqlite3 binds as they are)."""
    return np.array(list(values), dtype=object)


def ids(prefix: str, width: int, n: int) -> np.ndarray:
    """'C000001', 'C000002', … (more digits once `width` is exhausted)."""
    return np.strings.add(prefix, zfill(np.arange(1, n + 1), width))


def zfill(numbers: np.ndarray, width: int) -> np.ndarray:
    """`numbers` as text, zero-padded to `width` digits."""
    if not len(numbers):  # np.strings.zfill cannot size an empty array
        return np.empty(0, dtype=f"U{width}")
    return np.strings.zfill(numbers.astype(str), width)


def take(table: Table, order: np.ndarray) -> Table:
    """`table`'s rows in `order`."""
    return {column: values[order] for column, values in table.items()}


def with_ids(column: str, prefix: str, width: int, table: Table, by: str) -> Table:
    """`table` sorted by `by`, with ids counting up in that order as the first column."""
    ordered = take(table, np.argsort(table[by], kind="stable"))
    return {column: ids(prefix, width, len(table[by])), **ordered}


def nullable(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`values[index]`, None where index is -1."""
    return np.where(index >= 0, values[np.maximum(index, 0)] if len(values) else None, None)
