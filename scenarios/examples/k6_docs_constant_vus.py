"""k6's own documentation example for the constant-vus executor, ported by copying its options.

The k6 script (from the "Constant VUs" page of k6's docs)::

    export const options = {
      discardResponseBodies: true,
      scenarios: {
        contacts: {
          executor: 'constant-vus',
          vus: 10,
          duration: '30s',
        },
      },
    };

    export default function () {
      http.get('https://test.k6.io/contacts.php');
      // Injecting sleep
      // Total iteration time is sleep + time to finish request.
      sleep(0.5);
    }

The options below are k6's, verbatim. The one change of meaning a port must make is where the
requests go: ``BASE_URL`` (your own server, or the embedded demo target), never k6's test site.

    surge run --demo-target scenarios/examples/k6_docs_constant_vus.py
"""

from __future__ import annotations

from typing import Any

from scenarios.helpers.auth import get_base_url

options = {
    "discardResponseBodies": True,
    "scenarios": {
        "contacts": {
            "executor": "constant-vus",
            "vus": 10,
            "duration": "30s",
        },
    },
}

PAGE = f"{get_base_url()}/functions/v1/create-checkout-session"


async def default(vu: Any) -> None:
    await vu.http.get(PAGE)
    # Injecting sleep
    # Total iteration time is sleep + time to finish request.
    await vu.sleep(0.5)
