"""The CLI's download names: from the URL, without directories, non-ASCII kept."""

from __future__ import annotations

from urllib.parse import urlencode

from chat4all.objectstore import content_disposition
from cli.files import filename_from_url


def test_download_name_comes_from_the_url_without_directories() -> None:
    url = "http://s3/b/k?response-content-disposition=attachment%3B%20filename%3D%22..%2F..%2Fevil.sh%22&X-Amz-Expires=5"
    assert filename_from_url(url) == "evil.sh"
    assert filename_from_url("http://s3/b/k?X-Amz-Expires=5") is None


def test_non_ascii_names_survive_the_round_trip() -> None:
    header = content_disposition('relatório "final".pdf')
    assert header.isascii() and 'filename="relat_rio final.pdf"' in header
    url = "http://s3/b/k?" + urlencode({"response-content-disposition": header})
    assert filename_from_url(url) == 'relatório "final".pdf'
