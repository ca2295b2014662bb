"""Uses the Python client generated from voxd's served OpenAPI document the way a new user would:
create a contact, read the 409's contact_id, list and get scripts, place a call and read its result.

Run by .ci/client.sh: python smoke.py BASE_URL API_KEY CALLER_ID (the generated package on PYTHONPATH).
"""

import sys
import time

from voxd_client import AuthenticatedClient
from voxd_client.api.calls import create_phone_call, get_call, get_call_result
from voxd_client.api.contacts import create_contact, get_contact
from voxd_client.api.scripts import get_script, list_scripts
from voxd_client.models import (
    ContactInput,
    CreateContactResponse,
    CreatePhoneCallRequest,
    ErrorBody,
)

base, key, caller_id = sys.argv[1:4]
client = AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)


def text(v):
    """An enum member's value, or the string itself (the generator makes enums only of named schemas)."""
    return getattr(v, "value", v)


def check(cond, what):
    if not cond:
        sys.exit(f"smoke: {what}")
    print(f"ok: {what}")


created = create_contact.sync_detailed(client=client, body=ContactInput(phone_number="0412 345 671", first_name="Ada"))
check(created.status_code == 201 and isinstance(created.parsed, CreateContactResponse), "create-contact answers 201")
contact_id = created.parsed.contact_id
check(created.parsed.contact.phone_number == "+61412345671", "the number is stored in E.164")

again = create_contact.sync_detailed(client=client, body=ContactInput(phone_number="+61412345671"))
check(again.status_code == 409 and isinstance(again.parsed, ErrorBody), "a second contact with the number is a 409")
check(again.parsed.contact_id == contact_id, "the 409 names the existing contact_id as a typed field")

fetched = get_contact.sync(client=client, contact_id=contact_id)
check(fetched.contact.first_name == "Ada", "get-contact reads it back")

scripts = list_scripts.sync(client=client)
check(len(scripts.scripts) >= 1, "list-scripts lists the imported script")
outbound = next(s for s in scripts.scripts if text(s.type_) == "outbound")
script = get_script.sync(client=client, script_id=outbound.id)
check(script.script.name == outbound.name and len(script.script.definition.flows) >= 1, "get-script returns its flows")

request = CreatePhoneCallRequest.from_dict({
    "from_number": caller_id,
    "script_id": outbound.id,
    "contact": {"phone_number": "+61412345671"},
})
placed = create_phone_call.sync_detailed(client=client, body=request)
check(placed.status_code == 201, "create-phone-call schedules the call")
call_id = placed.parsed.call_id

deadline = time.monotonic() + 60
while True:
    call = get_call.sync(client=client, call_id=call_id).call
    if text(call.progress) in ("ended", "cancelled") or time.monotonic() > deadline:
        break
    time.sleep(0.25)
check(text(call.progress) == "ended", f"the call ended (progress {text(call.progress)}, status {text(call.status)})")

result = get_call_result.sync(client=client, call_id=call_id).call
check(result.available and text(result.status) == "completed", f"the result is available (status {text(result.status)})")
check(len(result.transcript) >= 2, f"the result has a transcript ({len(result.transcript)} turns)")
check(bool(result.summary), "the result has a summary")
print("smoke: the generated client works")
