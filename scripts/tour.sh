#!/usr/bin/env bash
# The README's five-minute tour as a program. The lines between "tour:begin" and
# "tour:end" are the README's code block ("Five-minute tour"), word for word, and a
# long test (payledger_project/tests/test_tour.py) runs this script against a
# served instance, so the tour cannot rot. Needs a running server (`make run`),
# the demo's staff (`make demo`), curl 7.76 or later and python3.
set -euo pipefail

# tour:begin
API=${API:-http://127.0.0.1:8000}
DEMO_PASSWORD=${DEMO_PASSWORD:-demo-passphrase-2026} # make demo's staff logins
RUN=$(date -u +%Y%m%d%H%M%S)-$$ # names of this run's own: never the demo's, never a past run's
SELLER=shop-$RUN
PASSWORD=a-long-passphrase
JSON='Content-Type: application/json'
# call METHOD PATH [curl options]: the answer on stdout; an error status prints it
# on stderr and fails
call() {
  local answer
  answer=$(curl -sS --fail-with-body -X "$1" "$API$2" "${@:3}") || { echo "$answer" >&2; return 1; }
  [ -z "$answer" ] || echo "$answer" # 204: nothing
}
# field NAME: one field of the JSON object on stdin (nothing there: a failed call)
field() { python3 -c 'import json, sys; t = sys.stdin.read(); print(json.loads(t)[sys.argv[1]]) if t else sys.exit(1)' "$1"; }
# login USERNAME PASSWORD: a new API key (each login makes its own)
login() { call POST /api-token-auth/ -H "$JSON" -d "{\"username\": \"$1\", \"password\": \"$2\"}" | field token; }
step() { printf '\n== %s\n' "$*"; }

step "register the seller $SELLER and log in"
call POST /api/sellers/ -H "$JSON" \
  -d "{\"username\": \"$SELLER\", \"password\": \"$PASSWORD\", \"name\": \"Tour shop $RUN\"}"
AUTH="Authorization: Token $(login "$SELLER" "$PASSWORD")"
call GET /api/sellers/me/ -H "$AUTH"

step "staff tokens: log in as make demo's approver (decides credit) and reverser (undoes charges)"
APPROVER="Authorization: Token $(login approver "$DEMO_PASSWORD")"
REVERSER="Authorization: Token $(login reverser "$DEMO_PASSWORD")"
echo "approver and reverser logged in"

step "ask for credit twice; the approver approves one request and rejects the other"
CREDIT=$(call POST /api/payments/credit-requests/ -H "$AUTH" -H "$JSON" -d '{"amount": 50000}' | field id)
TOO_MUCH=$(call POST /api/payments/credit-requests/ -H "$AUTH" -H "$JSON" -d '{"amount": 900000}' | field id)
call GET "/api/payments/credit-requests/?status=pending" -H "$AUTH"
call POST "/api/payments/credit-requests/$CREDIT/approve/" -H "$APPROVER"
call POST "/api/payments/credit-requests/$TOO_MUCH/reject/" -H "$APPROVER" -H "$JSON" \
  -d '{"reason": "More than a new shop needs"}'

step "sell a top-up, then retry it with the same Idempotency-Key: the first answer comes back"
SALE=(-H "$AUTH" -H "$JSON" -H "Idempotency-Key: order-$RUN" -d '{"phone_number": "+14155550123", "amount": 1500}')
FIRST=$(call POST /api/payments/phone-charge/ "${SALE[@]}")
echo "first: $FIRST"
RETRY=$(call POST /api/payments/phone-charge/ "${SALE[@]}" -D -) # -D -: the headers too
echo "retry: $(echo "$RETRY" | tail -n 1)"
echo "$RETRY" | grep -i '^idempotent-replayed' | tr -d '\r'
CHARGE=$(echo "$FIRST" | field id)
test "$(echo "$RETRY" | tail -n 1 | field id)" = "$CHARGE" # stops the tour on a second charge
BALANCE=$(call GET /api/sellers/me/ -H "$AUTH" | field balance)
echo "both answers are charge $CHARGE; the balance is $BALANCE (50000 - 1500, charged once)"

step "the reverser undoes the charge: the money comes back as a new journal row"
call POST "/api/payments/phone-charges/$CHARGE/reverse/" -H "$REVERSER" -H "$JSON" \
  -d '{"reason": "The operator refused the top-up"}'
call GET "/api/payments/phone-charges/?reversed=true" -H "$AUTH"

step "the journal, newest first (follow \"next\" for older pages)"
call GET "/api/payments/transactions/?limit=20" -H "$AUTH"

step "this month's statement: opening balance, totals per kind, closing balance"
read -r YEAR MONTH < <(date -u '+%Y %m')
FROM=$YEAR-$MONTH-01T00:00:00Z
if [ "$MONTH" = 12 ]; then TO=$((YEAR + 1))-01-01T00:00:00Z; else TO=$YEAR-$(printf %02d $((10#$MONTH + 1)))-01T00:00:00Z; fi
call GET "/api/payments/statement/?from=$FROM&to=$TO" -H "$AUTH"

step "the same month as CSV, from the opening balance on"
call GET "/api/payments/transactions/export.csv?created_after=$FROM&created_before=$TO" -H "$AUTH"

step "events: what happened to the seller, oldest first"
call GET /api/payments/events/ -H "$AUTH"

step "a webhook endpoint on this machine (make run allows loopback); its secret is shown this once"
HOOK=$(call POST /api/webhook-endpoints/ -H "$AUTH" -H "$JSON" \
  -d '{"url": "http://127.0.0.1:8765/", "event_types": ["phone_charge.created", "phone_charge.reversed"]}')
echo "$HOOK"
HOOK_ID=$(echo "$HOOK" | field id)
call POST "/api/webhook-endpoints/$HOOK_ID/test/" -H "$AUTH" # a webhook.test event, queued for it
echo "to receive and verify it: python manage.py listen_webhooks --username $SELLER, then make worker"

step "log out: the seller's key stops working (the staff's keys are revoked too)"
call GET /api/api-keys/ -H "$AUTH"
call POST /api/auth/logout/ -H "$AUTH"
call POST /api/auth/logout/ -H "$APPROVER"
call POST /api/auth/logout/ -H "$REVERSER"
echo "the seller's key after logout: HTTP $(curl -s -o /dev/null -w '%{http_code}' "$API/api/sellers/me/" -H "$AUTH")"
# tour:end
