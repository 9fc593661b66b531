"""README's "Five-minute tour" as a newcomer follows it: `make run`, `make demo`, then
scripts/tour.sh, whose marked lines are the README's code block word for word."""

import csv
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import requests
from django.conf import settings
from django.test import SimpleTestCase

from testing.servers import ServerTestCase, production_environment

ROOT = Path(settings.BASE_DIR)
TOUR = ROOT / "scripts" / "tour.sh"
MAKE = ["make", "--no-print-directory", f"VENV={sys.prefix}"]


def tour_lines() -> str:
    """The script's lines between its markers: what the README shows."""
    script = TOUR.read_text()
    return script.split("# tour:begin\n", 1)[1].split("# tour:end\n", 1)[0]


def readme_section(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


class TourReadmeTests(SimpleTestCase):
    def test_the_readme_shows_the_scripts_commands_word_for_word(self):
        self.assertIn(f"```sh\n{tour_lines()}```\n", readme_section("## Five-minute tour"))

    def test_the_readme_says_to_serve_seed_and_run_the_tour_as_the_test_does(self):
        section = readme_section("## Five-minute tour")
        for command in ("make run", "make demo", "scripts/tour.sh"):
            self.assertIn(command, section)


class TourTests(ServerTestCase):
    """`make run` serves the test database; `make demo` seeds it."""

    command = [*MAKE, "run"]
    environment = {"DEBUG": "true"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # What a developer's manage.py and make demo see: the served (test) database.
        cls.developer = production_environment(DEBUG="true")

    def setUp(self):
        subprocess.run(
            [*MAKE, "demo"],
            cwd=ROOT,
            env=self.developer,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def tour(self) -> str:
        result = subprocess.run(
            ["scripts/tour.sh"], cwd=ROOT, env={**self.developer, "API": self.server.base_url},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def answer(self, output: str, label: str) -> dict:
        return json.loads(re.search(rf"^{label}: (.*)$", output, re.MULTILINE).group(1))

    def test_the_retry_replays_the_first_charge(self):
        output = self.tour()
        first, retry = self.answer(output, "first"), self.answer(output, "retry")
        self.assertEqual(retry, first)
        self.assertIn("Idempotent-Replayed: true", output)
        self.assertIn(f"both answers are charge {first['id']}; the balance is 48500", output)

    def test_the_reversal_brings_the_money_back_in_this_months_statement(self):
        output = self.tour()
        statement = json.loads(step_output(output, "this month's statement"))
        month_start = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
        self.assertEqual(statement["from"], month_start)
        self.assertEqual((statement["opening_balance"], statement["closing_balance"]), (0, 50000))
        self.assertEqual(statement["totals"]["reversal"], {"amount": 1500, "count": 1})

    def test_the_csv_covers_this_month_from_its_opening_balance(self):
        rows = list(csv.DictReader(step_output(self.tour(), "the same month as CSV").splitlines()))
        month_start = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
        self.assertEqual((rows[0]["kind"], rows[0]["created_at"]), ("opening_balance", month_start))
        self.assertEqual([row["kind"] for row in rows[1:]], ["credit", "charge", "reversal"])

    def test_a_loopback_webhook_endpoint_is_made_and_sent_a_test_event(self):
        printed = step_output(self.tour(), "a webhook endpoint").splitlines()
        endpoint, event = json.loads(printed[0]), json.loads(printed[1])
        self.assertEqual(endpoint["url"], "http://127.0.0.1:8765/")
        self.assertTrue(endpoint["secret"])
        self.assertEqual(
            (event["type"], event["data"]), ("webhook.test", {"endpoint": endpoint["id"]})
        )

    def test_the_sellers_key_is_refused_after_logout(self):
        self.assertIn("the seller's key after logout: HTTP 401", self.tour())

    def test_it_runs_twice_on_one_database_beside_the_demo(self):
        first, second = self.tour(), self.tour()
        self.assertNotEqual(seller_of(first), seller_of(second))
        self.assertNotIn(seller_of(first), {"alice", "bob", "carol"})

    def test_create_api_key_as_documented_gives_a_key_the_server_takes(self):
        result = subprocess.run(
            [sys.executable, "manage.py", "create_api_key", "viewer"],
            cwd=ROOT, env=self.developer, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        key = result.stdout.strip()
        response = requests.get(
            self.url("/api/sellers/"), headers={"Authorization": f"Token {key}"}, timeout=10
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["count"], 3)  # the viewer reads every demo seller


def step_output(output: str, title: str) -> str:
    """What the step whose title starts with ``title`` printed."""
    return output.split(f"\n== {title}", 1)[1].split("\n", 1)[1].split("\n== ", 1)[0]


def seller_of(output: str) -> str:
    return re.search(r"^== register the seller (\S+) and log in$", output, re.MULTILINE).group(1)
