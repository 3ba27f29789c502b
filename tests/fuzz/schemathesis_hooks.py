"""schemathesis hooks for tests/api_fuzz.rs.

The fuzzer runs as the super user named in BERTH_FUZZ_USER. It may do
anything the API allows, except to that user itself: changing its password
or deleting it would lock the rest of the run out (every later request would
be refused, and the lockout would answer 429), and nothing would be tested.
"""

import os

import schemathesis

FUZZ_USER = os.environ["BERTH_FUZZ_USER"]


@schemathesis.hook
def filter_case(context, case):
    on_a_user = case.operation.path.startswith("/api/v1/users/{name}")
    return not (on_a_user and (case.path_parameters or {}).get("name") == FUZZ_USER)
