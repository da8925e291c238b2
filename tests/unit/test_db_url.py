"""A records URL is checked at the door (issue 15): a typo never starts a new, empty record set."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaops.errors import InputError
from oaops.store.db import make_engine


def test_a_sqlite_file_in_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"db_url: the folder .*/nowhere of sqlite:///.* does not exist"):
        make_engine(f"sqlite:///{tmp_path}/nowhere/oaops.db")
    assert not (tmp_path / "nowhere").exists()


def test_the_sites_var_folder_is_made_private_on_first_use(tmp_path: Path) -> None:
    make_engine(f"sqlite:///{tmp_path}/var/oaops.db").dispose()
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("url", ["postgresql+psycopg2://oa@127.0.0.1/oa", "mysql://root@127.0.0.1/oa"])
def test_a_url_whose_driver_is_missing_is_bad_input(url: str) -> None:
    with pytest.raises(InputError, match="No module named"):
        make_engine(url)
