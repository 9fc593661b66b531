import os
import subprocess
import sys
import tempfile
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import TestCase, tag
from django.urls import reverse

COMMITTED_SCHEMA = Path(settings.BASE_DIR) / "openapi.yaml"


class OpenApiContractTests(TestCase):
    def test_committed_openapi_yaml_matches_the_generated_schema(self):
        generated = StringIO()
        call_command("spectacular", validate=True, fail_on_warn=True, stdout=generated)
        self.assertEqual(
            generated.getvalue().strip(),
            COMMITTED_SCHEMA.read_text().strip(),
            "openapi.yaml is stale: run `make schema` and commit it.",
        )

    @tag("long")
    def test_make_schema_writes_the_committed_contract_in_a_plain_shell(self):
        # As a developer runs it: no DEBUG, SECRET_KEY or DATABASE_URL in the environment.
        environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
        with tempfile.TemporaryDirectory() as scratch:
            written = Path(scratch) / "openapi.yaml"
            subprocess.run(
                ["make", "--no-print-directory", "schema", f"VENV={sys.prefix}",
                 f"SCHEMA_FILE={written}"],
                cwd=settings.BASE_DIR, env=environment, check=True, capture_output=True,
            )  # fmt: skip
            self.assertEqual(written.read_text(), COMMITTED_SCHEMA.read_text())

    def test_schema_is_served_without_a_token(self):
        response = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json")
        self.assertEqual(response.status_code, 200)
        self.assertIn("/api/payments/phone-charge/", response.json()["paths"])

    def test_schema_declares_the_token_security_scheme(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
        scheme = schema["components"]["securitySchemes"]["tokenAuth"]
        self.assertEqual(
            (scheme["type"], scheme["in"], scheme["name"]), ("apiKey", "header", "Authorization")
        )

    def test_charge_operation_documents_the_idempotency_key_header(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
        parameters = schema["paths"]["/api/payments/phone-charge/"]["post"]["parameters"]
        self.assertIn("Idempotency-Key", [p["name"] for p in parameters])

    def test_charge_operation_documents_every_error_it_can_answer(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
        responses = schema["paths"]["/api/payments/phone-charge/"]["post"]["responses"]
        self.assertEqual(
            sorted(responses),
            ["201", "400", "401", "403", "409", "414", "415", "422", "429", "431", "503"],
        )

    def conflict_codes(self, path: str) -> set[str]:
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
        conflict = schema["paths"][path]["post"]["responses"]["409"]
        return {
            example["value"]["code"]
            for example in conflict["content"]["application/json"]["examples"].values()
        }

    def test_each_409_shows_the_codes_its_operation_refuses_with(self):
        expected = {
            "/api/payments/phone-charge/": {"insufficient_balance", "duplicate_reference"},
            "/api/payments/phone-charges/{id}/reverse/": {
                "already_reversed",
                "insufficient_phone_balance",
            },
            "/api/payments/credit-requests/{id}/approve/": {"already_decided"},
        }
        for path, codes in expected.items():
            with self.subTest(path):
                self.assertEqual(self.conflict_codes(path), codes)

    def test_swagger_ui_is_served_from_local_static_files(self):
        response = self.client.get(reverse("docs"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "drf_spectacular_sidecar/swagger-ui-dist")
