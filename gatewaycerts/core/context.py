"""Values of the call being served that the core reads without the web layer handing them down: the request id.

It lives here, below `web`, so that the audit trail (core) and the log records (web) read the same variable;
the request middleware sets it for the duration of each request.
"""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gatewaycerts_request_id", default=None)
