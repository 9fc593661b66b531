"""What gunicorn itself refuses, before Django sees the request, is answered in the
one JSON error shape with a status the OpenAPI schema lists for every operation.

gunicorn runs as documented (`gunicorn -c gunicorn.conf.py`, production
environment); an outside client (an over-long URL, an over-long header, bytes
that are not HTTP) gets what the schema promises, not an HTML page.
"""

import json
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests
import schemathesis
from django.conf import settings
from django.test import SimpleTestCase, tag
from django.urls import reverse

from testing.servers import ServerTestCase

# gunicorn's defaults: a request line of at most 4094 bytes, a header of 8190.
LONG_PATH = "/api/sellers/" + "a" * 5000 + "/"
LONG_HEADER = "b" * 9000
SERVER_ERRORS = {"400", "414", "431"}
COMMITTED_SCHEMA = Path(settings.BASE_DIR) / "openapi.yaml"


@tag("long")
class GunicornRefusalTests(ServerTestCase):
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    environment = {"WEB_CONCURRENCY": "1", "PROXY_COUNT": "1"}

    def assertJsonError(self, response: requests.Response, status: int, code: str) -> None:
        self.assertEqual(response.status_code, status, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        body = response.json()
        self.assertEqual(set(body), {"code", "message"})
        self.assertEqual(body["code"], code)

    def test_an_over_long_url_is_a_json_414(self):
        response = requests.get(self.url(LONG_PATH))
        self.assertJsonError(response, 414, "uri_too_long")

    def test_an_over_long_header_is_a_json_431(self):
        response = requests.get(self.url("/api/sellers/"), headers={"X-Long": LONG_HEADER})
        self.assertJsonError(response, 431, "request_header_fields_too_large")

    def test_a_request_line_that_is_not_http_is_a_json_400(self):
        with socket.create_connection(("127.0.0.1", urlsplit(self.server.base_url).port)) as raw:
            raw.sendall(b"GET /api/sellers/ NOT-HTTP\r\nHost: localhost\r\n\r\n")
            answer = raw.makefile("rb").read().decode("latin-1")
        head, _, body = answer.partition("\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 400 "), head)
        self.assertIn("Content-Type: application/json", head)
        self.assertEqual(json.loads(body)["code"], "bad_request")

    def test_schemathesis_finds_the_answers_to_a_long_url_and_a_long_header_documented(self):
        """Schemathesis's own checks (status code, content type, body schema), as the
        fuzz applies them, on gunicorn's answers to the committed schema's operation."""
        operation = schemathesis.openapi.from_path(COMMITTED_SCHEMA)["/api/sellers/"]["GET"]
        cases = {
            414: operation.Case(query={"page": "9" * 5000}),
            431: operation.Case(headers={"X-Long": LONG_HEADER}),
        }
        for status, case in cases.items():
            with self.subTest(status):
                response = case.call(base_url=self.server.base_url)
                self.assertEqual(response.status_code, status)
                case.validate_response(response)

    def test_the_server_still_serves_after_refusing(self):
        requests.get(self.url(LONG_PATH))
        self.assertEqual(requests.get(self.url("/healthz")).status_code, 200)


class ServerErrorsInTheSchemaTests(SimpleTestCase):
    def test_every_operation_lists_the_server_refusals(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                with self.subTest(f"{method.upper()} {path}"):
                    self.assertLessEqual(SERVER_ERRORS, set(operation["responses"]))
