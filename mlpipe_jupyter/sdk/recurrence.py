"""When a schedule fires: Azure ML SDK v1's ``ScheduleRecurrence`` and ``TimeZone``, checked as Azure checks
them, and the next fire time after a moment (python-dateutil's rrule in the schedule's time zone).

Azure's rules kept here: without ``start_time`` the first run is at once; a ``start_time`` in the past
means the first run is at the next computed time; Day and Week schedules may name ``hours`` and
``minutes`` (or ``time_of_day``, not both), Week schedules ``week_days``; Minute and Hour schedules
count real elapsed time, Day, Week and Month ones follow the wall clock of their time zone.
"""
from __future__ import annotations

import datetime as dt
import enum
import re
from zoneinfo import ZoneInfo

from dateutil import rrule
from tzlocal.windows_tz import win_tz

from mlpipe_jupyter.errors import UserError

FREQUENCIES = {"Minute": rrule.MINUTELY, "Hour": rrule.HOURLY, "Day": rrule.DAILY, "Week": rrule.WEEKLY,
               "Month": rrule.MONTHLY}
WEEK_DAYS = {"Monday": rrule.MO, "Tuesday": rrule.TU, "Wednesday": rrule.WE, "Thursday": rrule.TH,
             "Friday": rrule.FR, "Saturday": rrule.SA, "Sunday": rrule.SU}
_START_FORMAT = "%Y-%m-%dT%H:%M:%S"

# Azure's TimeZone members are the Windows time zone names (value) spelled without spaces or signs (name);
# tzlocal keeps the table from those names to IANA ones that zoneinfo reads.
TimeZone = enum.Enum("TimeZone", {re.sub(r"[^A-Za-z0-9]", "", name): name for name in sorted(win_tz)},
                     module=__name__)
TimeZone.__doc__ = "Azure ML's time zones for a ScheduleRecurrence: the Windows names (TimeZone.UTC, ...)."


class ScheduleRecurrence:
    """How often a schedule fires (Azure ML SDK v1's arguments); ``validate()`` says what is wrong."""

    def __init__(self, frequency, interval, start_time=None, time_zone=None, hours=None, minutes=None,
                 week_days=None, time_of_day=None):
        self.frequency = frequency
        self.interval = interval
        self.start_time = start_time
        self.time_zone = time_zone
        self.hours = hours
        self.minutes = minutes
        self.week_days = week_days
        self.time_of_day = time_of_day

    def validate(self) -> None:
        """One clear UserError naming the argument at fault, as Azure checks at ``Schedule.create``."""
        def bad(what):
            raise UserError(f"ScheduleRecurrence: {what}")

        if self.frequency not in FREQUENCIES:
            bad(f"frequency {self.frequency!r} is not one of {', '.join(FREQUENCIES)}.")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval < 1:
            bad(f"interval {self.interval!r} must be a whole number of {self.frequency} units, 1 or more.")
        if (self.hours is not None or self.minutes is not None or self.time_of_day is not None) \
                and self.frequency not in ("Day", "Week"):
            bad(f"hours, minutes and time_of_day apply only to frequency 'Day' or 'Week', not {self.frequency!r}.")
        if self.week_days is not None and self.frequency != "Week":
            bad(f"week_days apply only to frequency 'Week', not {self.frequency!r}.")
        if self.time_of_day is not None and (self.hours is not None or self.minutes is not None):
            bad("give either time_of_day or hours and minutes, not both.")
        for name, values, top in (("hours", self.hours, 23), ("minutes", self.minutes, 59)):
            if values is None:
                continue
            if not isinstance(values, (list, tuple)) or not values or any(
                    isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top for v in values):
                bad(f"{name} must be a non-empty list of whole numbers from 0 to {top}; got {values!r}.")
        if self.week_days is not None:
            if not isinstance(self.week_days, (list, tuple)) or not self.week_days or any(
                    d not in WEEK_DAYS for d in self.week_days):
                bad(f"week_days must be a non-empty list of {', '.join(WEEK_DAYS)}; got {self.week_days!r}.")
        if self.time_of_day is not None:
            self._time_of_day()
        self._start()
        self._zone()

    # -- parts ----------------------------------------------------------------------------------------------
    def _time_of_day(self) -> tuple[int, int]:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(self.time_of_day))
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise UserError(f"ScheduleRecurrence: time_of_day must be 'hh:mm' (such as '15:30'); "
                            f"got {self.time_of_day!r}.")
        return int(match[1]), int(match[2])

    def _start(self) -> dt.datetime | None:
        """The naive start time, in the schedule's time zone."""
        if self.start_time is None:
            return None
        if isinstance(self.start_time, dt.datetime):
            if self.start_time.tzinfo is not None:
                raise UserError(f"ScheduleRecurrence: start_time {self.start_time!r} has a tzinfo; give a naive "
                                "datetime and the time zone as time_zone, as Azure ML asks.")
            return self.start_time
        try:
            return dt.datetime.strptime(str(self.start_time), _START_FORMAT)
        except ValueError:
            raise UserError(f"ScheduleRecurrence: start_time {self.start_time!r} is neither a datetime nor a "
                            "string of the form YYYY-MM-DDThh:mm:ss.") from None

    def _zone(self) -> ZoneInfo:
        zone = self.time_zone
        if zone is None:
            return ZoneInfo("UTC")
        if isinstance(zone, TimeZone):
            zone = zone.value
        if zone not in win_tz:
            raise UserError(f"ScheduleRecurrence: time_zone {self.time_zone!r} is not one of Azure ML's time zones "
                            "(a TimeZone member such as TimeZone.UTC or TimeZone.PacificStandardTime).")
        return ZoneInfo(win_tz[zone])

    @property
    def _has_pattern(self) -> bool:
        return any(v is not None for v in (self.hours, self.minutes, self.week_days, self.time_of_day))

    def _rule(self, start_utc: dt.datetime) -> rrule.rrule:
        """The rule from ``start_utc``: in UTC for Minute and Hour, else on the time zone's wall clock."""
        hours, minutes = self.hours, self.minutes
        if self.time_of_day is not None:
            h, m = self._time_of_day()
            hours, minutes = [h], [m]
        fixed_clock = hours is not None or minutes is not None
        if self.frequency in ("Minute", "Hour"):
            start = start_utc.replace(tzinfo=None)
        else:
            start = start_utc.astimezone(self._zone()).replace(tzinfo=None)
        if fixed_clock:
            start = start.replace(second=0, microsecond=0)
        return rrule.rrule(FREQUENCIES[self.frequency], interval=self.interval, dtstart=start,
                           byhour=hours, byminute=minutes, bysecond=0 if fixed_clock else None,
                           byweekday=[WEEK_DAYS[d] for d in self.week_days] if self.week_days else None)

    def _to_utc(self, local: dt.datetime) -> dt.datetime:
        zone = ZoneInfo("UTC") if self.frequency in ("Minute", "Hour") else self._zone()
        return local.replace(tzinfo=zone).astimezone(dt.timezone.utc)

    def _from_utc(self, moment: dt.datetime) -> dt.datetime:
        zone = ZoneInfo("UTC") if self.frequency in ("Minute", "Hour") else self._zone()
        return moment.astimezone(zone).replace(tzinfo=None)

    # -- times --------------------------------------------------------------------------------------------
    def anchor(self, created: float) -> float:
        """Where the rule counts from (epoch seconds): the start time, else the creation time."""
        start = self._start()
        if start is None:
            return created
        return start.replace(tzinfo=self._zone()).timestamp()

    def first_time(self, now: float, anchor: float) -> float:
        """The first fire time (epoch seconds) of a schedule made or changed at ``now``."""
        start = self._start()
        if start is None:
            return now  # Azure: without a start time the first run is at once
        if anchor > now and not self._has_pattern:
            return anchor
        return self.next_time(max(now, anchor), anchor)

    def next_time(self, after: float, anchor: float, minute_seconds: float = 60.0) -> float:
        """The first slot strictly after ``after`` (epoch seconds). ``minute_seconds`` shortens a Minute
        schedule's minute, for tests only."""
        if self.frequency in ("Minute", "Hour"):  # elapsed time: plain arithmetic from the anchor
            step = self.interval * (minute_seconds if self.frequency == "Minute" else 3600)
            return anchor + (int((after - anchor) // step) + 1) * step if after >= anchor else anchor
        anchor_utc = dt.datetime.fromtimestamp(anchor, dt.timezone.utc)
        after_utc = dt.datetime.fromtimestamp(after, dt.timezone.utc)
        found = self._rule(anchor_utc).after(self._from_utc(after_utc), inc=False)
        if found is None:
            raise UserError(f"ScheduleRecurrence: {self!r} never fires after {after_utc.isoformat()}.")
        return self._to_utc(found).timestamp()

    # -- records --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        zone = self.time_zone.value if isinstance(self.time_zone, TimeZone) else self.time_zone
        start = self._start()
        return {"frequency": self.frequency, "interval": self.interval,
                "start_time": None if start is None else start.strftime(_START_FORMAT), "time_zone": zone,
                "hours": self.hours, "minutes": self.minutes, "week_days": self.week_days,
                "time_of_day": self.time_of_day}

    @classmethod
    def from_dict(cls, d: dict) -> "ScheduleRecurrence":
        zone = d.get("time_zone")
        return cls(d["frequency"], d["interval"], start_time=d.get("start_time"),
                   time_zone=TimeZone(zone) if zone is not None else None, hours=d.get("hours"),
                   minutes=d.get("minutes"), week_days=d.get("week_days"), time_of_day=d.get("time_of_day"))

    def __repr__(self):
        given = {k: v for k, v in self.to_dict().items() if v is not None}
        return f"ScheduleRecurrence({', '.join(f'{k}={v!r}' for k, v in given.items())})"
