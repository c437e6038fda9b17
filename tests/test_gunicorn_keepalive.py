"""Under gunicorn, a 413 must not poison the client's kept-alive connection."""

import requests

from .servers import gunicorn_server

TWO_MIB = 2 * 1024 * 1024


def test_after_a_413_the_same_connection_serves_the_next_request(api, database_url):
    headers = {"Authorization": f"Bearer {api.user()}", "Content-Type": "application/json"}
    server = gunicorn_server(database_url, workers=1, threads=2)
    with server as (base_url, _process), requests.Session() as session:
        for _ in range(5):
            too_big = session.post(
                f"{base_url}/api/v1/eas", data=b" " * TWO_MIB, headers=headers, timeout=30
            )
            assert too_big.status_code == 413
            assert too_big.json()["detail"] == "payload_too_large"
            following = session.get(f"{base_url}/api/v1/eas", headers=headers, timeout=30)
            assert following.status_code == 200
            assert following.json() == []
