"""CCM validity periods: YEAR (12 months), MONTH (31 days), DAY, HOUR; caps; start_from; issuer bounds."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gatewaycerts.core.common import require
from gatewaycerts.domain.errors import InvalidInputError, ValidityError

ROOT_CAP_YEARS = 30
SUBORDINATE_CAP_YEARS = 20
START_FROM_TOLERANCE = timedelta(minutes=5)
_MAX_VALUE = {"YEAR": ROOT_CAP_YEARS, "MONTH": ROOT_CAP_YEARS * 12, "DAY": 366 * ROOT_CAP_YEARS, "HOUR": 24 * 366 * 30}


@dataclass(frozen=True, slots=True)
class ValidityRequest:
    type: str | None
    value: int | None
    start_from: int | None = None  # milliseconds since the epoch
    not_after: datetime | None = None  # an absolute end instead of type/value (Notary's not_valid_after)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the day is clamped (31 Jan + 1 month = 28/29 Feb)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def resolve_validity(
    req: ValidityRequest | None,
    now: datetime,
    *,
    cap_years: int,
    issuer_not_before: datetime | None = None,
    issuer_not_after: datetime | None = None,
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for a request, or a ValidityError that says which rule it breaks."""
    if req is None:
        require(None, "validity")
    assert req is not None
    if req.not_after is not None:
        if req.not_after <= now:
            raise ValidityError("the validity must end in the future", field="validity")
        return _bounded(now, req.not_after, cap_years, issuer_not_before, issuer_not_after)
    kind = require(req.type, "validity.type")
    value = require(req.value, "validity.value")
    if kind not in _MAX_VALUE:
        raise InvalidInputError(
            "Invalid parameter value, parameterName:validity.type. Use YEAR, MONTH, DAY or HOUR", field="validity"
        )
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidityError("validity.value must be a positive integer", field="validity")
    if req.start_from is None:
        start = now
    else:
        try:
            start = datetime.fromtimestamp(req.start_from / 1000, UTC).replace(microsecond=0)
        except (OverflowError, OSError, ValueError):
            raise ValidityError("validity.start_from is not a valid time in milliseconds", field="validity") from None
        if start < now - START_FROM_TOLERANCE:
            raise ValidityError("validity.start_from may not be earlier than five minutes before now", field="validity")
    try:
        if kind == "YEAR":
            end = add_months(start, 12 * value)
        elif kind == "MONTH":
            end = start + timedelta(days=31 * value)
        elif kind == "DAY":
            end = start + timedelta(days=value)
        else:
            end = start + timedelta(hours=value)
    except (OverflowError, ValueError):
        end = datetime.max.replace(tzinfo=UTC)
    return _bounded(start, end, cap_years, issuer_not_before, issuer_not_after)


def _bounded(
    start: datetime,
    end: datetime,
    cap_years: int,
    issuer_not_before: datetime | None,
    issuer_not_after: datetime | None,
) -> tuple[datetime, datetime]:
    if end > add_months(start, 12 * cap_years):
        raise ValidityError(f"the validity may not exceed {cap_years} years", field="validity")
    if issuer_not_before is not None and start < issuer_not_before:
        raise ValidityError("the validity may not start before the issuing CA's", field="validity")
    if issuer_not_after is not None and end > issuer_not_after:
        raise ValidityError(
            "the validity may not end after the issuing CA's not_after "
            f"({issuer_not_after.strftime('%Y-%m-%dT%H:%M:%SZ')}); shorten it",
            field="validity",
        )
    return start, end
