"""Journeys (自动化旅程): versioned step graphs, enrolments moved set-based by the worker's tick.

A :class:`Journey` is what operators name and switch on and off; each edit of a live journey
makes a new :class:`JourneyVersion` (its ``definition`` holds the trigger, the steps, the goal, the
control group and the send window, see :mod:`siyu.journeys.definition`). A member's trip through
one version is an :class:`Enrolment`; every step it passes leaves a :class:`StepLog` row whose
``(enrolment, step)`` key is unique, so a step never runs twice for one enrolment.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.members.models import Member
from siyu.org.models import Staff


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    LIVE = "live", _("live")
    PAUSED = "paused", _("paused")
    STOPPED = "stopped", _("stopped")


class Journey(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=JourneyStatus.choices,
                              default=JourneyStatus.DRAFT, db_index=True)
    current_version = models.ForeignKey("JourneyVersion", verbose_name=_("current version"), null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """One immutable edition of a journey's graph; members in flight finish on theirs."""

    journey = models.ForeignKey(Journey, verbose_name=_("journey"), on_delete=models.CASCADE,
                                related_name="versions", db_index=False)
    number = models.PositiveIntegerField(_("version"))
    definition = models.JSONField(_("definition"))
    trigger_kind = models.CharField(_("trigger"), max_length=20, db_index=True)
    created_by = models.CharField(_("created by"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("journey version")
        verbose_name_plural = _("journey versions")
        ordering = ["journey", "-number"]
        constraints = [models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class EnrolmentState(models.TextChoices):
    ACTIVE = "active", _("in the journey")
    CONTROL = "control", _("control group (held out)")
    COMPLETED = "completed", _("completed")
    CONVERTED = "converted", _("goal reached")
    EXITED = "exited", _("exited")


#: States whose members are still watched for the goal.
OPEN_STATES = (EnrolmentState.ACTIVE, EnrolmentState.CONTROL)


class Enrolment(models.Model):
    """One member's trip through one journey version (旅程实例).

    ``due_at`` is when the tick next looks at it (null once finished); ``step`` the key of the
    step it is at. ``entry_key`` makes entering idempotent: the trigger fact that enrolled the
    member (``order:12``), or ``once`` for journeys a member enters once ever.
    """

    # journey_id is the first column of the unique (journey, member, entry_key): no index of its own
    journey = models.ForeignKey(Journey, verbose_name=_("journey"), on_delete=models.CASCADE,
                                related_name="enrolments", db_index=False)
    version = models.ForeignKey(JourneyVersion, verbose_name=_("version"), on_delete=models.PROTECT,
                                related_name="enrolments")
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="journey_enrolments")
    entry_key = models.CharField(_("entry key"), max_length=100)
    state = models.CharField(_("state"), max_length=10, choices=EnrolmentState.choices,
                             default=EnrolmentState.ACTIVE)
    step = models.CharField(_("step"), max_length=32)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    step_since = models.DateTimeField(_("at this step since"))
    anchor_at = models.DateTimeField(_("anchor"), help_text=_("The moment waits counted in days after entry start from "
                                                              "(the member's joining for joining triggers)"))
    entered_at = models.DateTimeField(_("entered at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    converted_at = models.DateTimeField(_("goal reached at"), null=True, blank=True)
    exit_reason = models.CharField(_("exit reason"), max_length=30, blank=True)

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["journey", "member", "entry_key"],
                                               name="journey_enrolment_entry_unique")]
        indexes = [
            models.Index(fields=["state", "due_at", "id"], name="journey_enrolment_due_id"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}:{self.member_id} @ {self.step} ({self.state})"


class StepOutcome(models.TextChoices):
    ENTERED = "entered", _("entered")
    WAITED = "waited", _("waited")
    TIMED_OUT = "timed_out", _("wait timed out")
    YES = "yes", _("condition met")
    NO = "no", _("condition not met")
    VARIANT = "variant", _("split variant")
    SENT = "sent", _("message queued")
    SUPPRESSED = "suppressed", _("message suppressed")
    DONE = "done", _("action done")
    SKIPPED = "skipped", _("action skipped")
    CONTROL = "control", _("held out (control group)")
    CONVERTED = "converted", _("goal reached")
    EXITED = "exited", _("exited")
    COMPLETED = "completed", _("completed")


class StepLog(models.Model):
    """Every step a member went through, with time and outcome (the member's journey history).

    ``(enrolment, step)`` is unique: the final guard that a step's action runs once per enrolment.
    """

    # enrolment_id and member_id lead the unique (enrolment, step) and the (member, at) index
    enrolment = models.ForeignKey(Enrolment, verbose_name=_("enrolment"), on_delete=models.CASCADE,
                                  related_name="log", db_constraint=False, db_index=False)
    journey = models.ForeignKey(Journey, verbose_name=_("journey"), on_delete=models.CASCADE, related_name="+",
                                db_constraint=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+",
                               db_constraint=False, db_index=False)
    step = models.CharField(_("step"), max_length=32)
    kind = models.CharField(_("kind"), max_length=20)
    outcome = models.CharField(_("outcome"), max_length=12, choices=StepOutcome.choices)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    message_id = models.BigIntegerField(_("outbox message"), null=True, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("step log")
        verbose_name_plural = _("step logs")
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["enrolment", "step"], name="journey_step_log_unique")]
        indexes = [models.Index(fields=["member", "at"], name="journey_step_log_member")]

    def __str__(self) -> str:
        return f"{self.enrolment_id} {self.step}: {self.outcome}"


class TriggerCursor(models.Model):
    """How far a journey has read a trigger or goal source (an id, or a time for daily scans).

    A restart resumes from here; the row is locked while a tick reads the source, so two workers
    never enrol from the same facts at once.
    """

    journey = models.ForeignKey(Journey, verbose_name=_("journey"), on_delete=models.CASCADE, related_name="cursors",
                                db_index=False)
    source = models.CharField(_("source"), max_length=40)
    position = models.BigIntegerField(_("last id read"), default=0)
    position_at = models.DateTimeField(_("last time read"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("trigger cursor")
        verbose_name_plural = _("trigger cursors")
        constraints = [models.UniqueConstraint(fields=["journey", "source"], name="journey_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.journey_id}:{self.source}@{self.position}"


class GuideTaskStatus(models.TextChoices):
    OPEN = "open", _("open")
    DONE = "done", _("done")
    CANCELLED = "cancelled", _("cancelled")


class GuideTask(models.Model):
    """A task for a member's owning guide created by a journey step (导购任务), until the guides
    area takes over its inbox."""

    guide = models.ForeignKey(Staff, verbose_name=_("guide"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="journey_tasks", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+")
    enrolment = models.ForeignKey(Enrolment, verbose_name=_("enrolment"), on_delete=models.CASCADE, related_name="+",
                                  db_index=False)
    step = models.CharField(_("step"), max_length=32)
    title = models.CharField(_("title"), max_length=200)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=GuideTaskStatus.choices,
                              default=GuideTaskStatus.OPEN, db_index=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("guide task")
        verbose_name_plural = _("guide tasks")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["enrolment", "step"], name="journey_guide_task_unique")]
        indexes = [models.Index(fields=["guide", "status"], name="journey_guide_task_inbox")]

    def __str__(self) -> str:
        return self.title

