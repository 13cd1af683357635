"""What a simulated fieldwork achieved: the figures of issue 3 §5, as a dataclass and a printed table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FieldworkReport:
    """Figures of one simulated fieldwork.

    ``completes`` counts interviews that count towards a quota (at most the target per enterprise);
    ``overquota`` counts completes beyond an enterprise's target (interviewer time spent for nothing; must be 0
    with our scheduler). ``interviewer_hours`` is paid time: every planned shift hour from the start of the
    fieldwork to its end, whether the interviewer dialed, talked or waited, plus overtime (an interview running
    past the shift's end). ``planned_hours`` are the shift plan's hours over the same span; with the
    ``flexible`` team (interviewers sent home unpaid when there is nothing to do) ``hours_cut`` are the planned
    hours not worked, and ``interviewer_hours`` are the hours actually paid. ``idle_hours`` are paid hours spent
    waiting for work. ``short_enterprises`` are enterprises below target while they still had sample (open or
    unreleased cases) when the fieldwork ended; ``short_without_sample`` those whose sample ran out.
    ``deadline_days`` is set for the deadline variant (the study had to finish by the end of that day);
    ``shortfall`` counts the completes still missing at the end.
    """

    strategy: str
    world: str
    seed: int
    enterprises: int
    interviewers: int
    quota_total: int
    completes: int
    overquota: int
    interviewer_hours: float
    calendar_days: int
    end_reason: str
    dials: int
    contacts: int
    sample_released: int
    sample_used: int
    short_enterprises: int
    short_without_sample: int
    quota_collisions: int = 0
    wall_seconds: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    dials_by_outcome: dict[str, int] = field(default_factory=dict)
    contact_rate_by_part: dict[str, float] = field(default_factory=dict)
    time_use_hours: dict[str, float] = field(default_factory=dict)
    team: str = "fixed"
    planned_hours: float = 0.0
    overtime_hours: float = 0.0
    hours_cut: float = 0.0
    idle_hours: float = 0.0
    deadline_days: int | None = None
    shortfall: int = 0

    @property
    def paid_hours(self) -> float:
        return self.interviewer_hours

    @property
    def completes_per_paid_hour(self) -> float:
        return self.completes / self.interviewer_hours if self.interviewer_hours else 0.0

    @property
    def idle_share(self) -> float:
        """Share of paid time spent waiting for work."""
        return self.idle_hours / self.interviewer_hours if self.interviewer_hours else 0.0

    @property
    def short_total(self) -> int:
        return self.short_enterprises + self.short_without_sample

    @property
    def quotas_filled(self) -> bool:
        return self.completes >= self.quota_total

    @property
    def completes_per_interviewer_hour(self) -> float:
        """Kept for old callers: the same as :attr:`completes_per_paid_hour` (hours are paid hours)."""
        return self.completes_per_paid_hour

    @property
    def dials_per_complete(self) -> float:
        return self.dials / self.completes if self.completes else float("inf")

    @property
    def sample_used_per_complete(self) -> float:
        return self.sample_used / self.completes if self.completes else float("inf")

    @property
    def contact_rate(self) -> float:
        return self.contacts / self.dials if self.dials else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(quotas_filled=self.quotas_filled,
                   completes_per_paid_hour=round(self.completes_per_paid_hour, 4),
                   completes_per_interviewer_hour=round(self.completes_per_interviewer_hour, 4),
                   idle_share=round(self.idle_share, 4),
                   dials_per_complete=round(self.dials_per_complete, 3),
                   sample_used_per_complete=round(self.sample_used_per_complete, 3),
                   contact_rate=round(self.contact_rate, 4))
        return out

    def line(self) -> str:
        """The machine-readable line of the strategy benchmark."""
        return (f"strategy={self.strategy} completes_per_paid_hour={self.completes_per_paid_hour:.3f} "
                f"calendar_days={self.calendar_days} idle_share={self.idle_share:.3f} overquota={self.overquota} "
                f"short_enterprises={self.short_enterprises} dials_per_complete={self.dials_per_complete:.2f}")

    def table(self) -> str:
        """A two-column table (zh / en labels) of the main figures."""
        r = self.rates
        rows = [
            ("策略 / strategy", self.strategy),
            ("世界 / world", f"{self.world} (seed {self.seed})"),
            ("企业 / enterprises", f"{self.enterprises}"),
            ("访员 / interviewers", f"{self.interviewers}"),
            ("配额完成 / quotas filled", f"{self.completes}/{self.quota_total} ({'yes' if self.quotas_filled else 'NO'})"),
            ("结束原因 / ended because", self.end_reason),
            ("每付薪小时完成 / completes per paid interviewer-hour", f"{self.completes_per_paid_hour:.3f}"),
            ("团队 / team", self.team + (" (sent home when idle: a variant)" if self.team == "flexible" else "")),
            ("付薪工时 / paid interviewer-hours", f"{self.interviewer_hours:.1f} (planned {self.planned_hours:.1f}, "
                                                f"overtime {self.overtime_hours:.1f}, cut {self.hours_cut:.1f})"),
            ("等待占比 / idle share of paid time", f"{self.idle_share:.1%} ({self.idle_hours:.1f} h)"),
            ("日历天数 / calendar days", f"{self.calendar_days}"),
            ("拨打次数 / dials", f"{self.dials}"),
            ("每完成拨打 / dials per complete", f"{self.dials_per_complete:.2f}"),
            ("接通率 / dials reaching a person", f"{self.contact_rate:.1%}"),
            ("样本使用 / sample used (released)", f"{self.sample_used} ({self.sample_released})"),
            ("每完成样本 / sample used per complete", f"{self.sample_used_per_complete:.2f}"),
            ("超配额完成 / over-quota completes", f"{self.overquota}"),
            ("未完成且有样本 / enterprises short with sample left", f"{self.short_enterprises}"),
            ("未完成且无样本 / enterprises short, sample exhausted", f"{self.short_without_sample}"),
            ("截止 / deadline", f"day {self.deadline_days}: {self.shortfall} completes short" if self.deadline_days
             else "none"),
            ("配额冲突 / quota full at answer", f"{self.quota_collisions}"),
        ]
        for key in ("RR1", "RR3", "COOP1", "REF1", "CON1", "e"):
            if key in r:
                rows.append((f"AAPOR {key}", f"{r[key]:.3f}"))
        if self.time_use_hours:
            use = ", ".join(f"{k} {v:.0f}" for k, v in self.time_use_hours.items())
            rows.append(("工时构成 / time use (h)", use))
        if self.contact_rate_by_part:
            parts = ", ".join(f"{k} {v:.0%}" for k, v in self.contact_rate_by_part.items())
            rows.append(("分时段接通率 / contact rate by part", parts))
        rows.append(("耗时 / wall time", f"{self.wall_seconds:.1f} s"))
        width = max(len(a) for a, _ in rows)
        return "\n".join(f"{a.ljust(width)}  {b}" for a, b in rows)


def comparison_table(reports: list[FieldworkReport]) -> str:
    """Strategies side by side, with ours relative to each."""
    head = (f"{'strategy':<12} {'cpph':>6} {'paid h':>7} {'idle':>6} {'cut h':>6} {'days':>5} {'dials':>7} "
            f"{'d/c':>6} {'contact':>7} {'smp/c':>6} {'overq':>5} {'short':>5} {'short0':>6} {'RR3':>6} {'filled':>9}")
    lines = [head, "-" * len(head)]
    for r in reports:
        lines.append(
            f"{r.strategy:<12} {r.completes_per_paid_hour:6.3f} {r.interviewer_hours:7.1f} {r.idle_share:6.1%} "
            f"{r.hours_cut:6.1f} {r.calendar_days:5d} {r.dials:7d} {r.dials_per_complete:6.2f} {r.contact_rate:7.1%} "
            f"{r.sample_used_per_complete:6.2f} {r.overquota:5d} {r.short_enterprises:5d} "
            f"{r.short_without_sample:6d} {r.rates.get('RR3', float('nan')):6.3f} {r.completes:>4}/{r.quota_total:<4}")
    ours = next((r for r in reports if r.strategy == "ours"), None)
    if ours is not None and ours.completes_per_paid_hour:
        rel = []
        for r in reports:
            if r is ours or not r.completes_per_paid_hour:
                continue
            rel.append(f"ours/{r.strategy} = {ours.completes_per_paid_hour / r.completes_per_paid_hour:.3f}")
        lines.append("; ".join(rel))
    lines.append("cpph = completes per paid interviewer-hour; idle = share of paid time waiting; cut h = planned "
                 "hours sent home (flexible team only); d/c = dials per complete; smp/c = sample used per complete; "
                 "short = enterprises short while sample remains; short0 = short with sample exhausted")
    return "\n".join(lines)
