"""Where the project's files are, for tests in any folder."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = PROJECT / "handover.example.toml"
SHOP_DDL = PROJECT / "schemas" / "shop_source.sql"
AGE_VECTORS = PROJECT / "tests" / "testdata" / "age-cctv"
