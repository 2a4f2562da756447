"""Requests a job refuses: before any work (one plain sentence in the UI, no stack trace, no
retry), and the partitions a run over several of them cannot do (`PartitionRefusals`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NoReturn

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetMaterialization,
    Config,
    Failure,
    MetadataValue,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.text import cut
from invoice_pipelines.db.tenancy import UnknownOrganization, find_organization
from invoice_pipelines.lib.read_only import Refused, read_only_sentence, writable
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.scheduled_checks import evaluation

# how many refusals (and partitions done) a run's failure message names before "and N more",
# and how much of each reason it quotes (a QBO error can carry a long answer); the failure's
# metadata lists every refusal
NAMED = 10
REASON_CHARS = 300


def refused(message: str) -> Failure:
    """A request refused before any work: one plain sentence, and no retry (it would fail alike)."""
    return Failure(message, allow_retries=False)


# the job of a plain Materialize (the UI's button and launchpad over assets): Dagster's implicit one
IMPLICIT_ASSET_JOB = "__ASSET_JOB"
CONFIRM_HELP = (
    "Needed only by a plain Materialize of this asset (not by its job, sensor or schedule): "
    "the words its description names, saying you mean what cannot be taken back."
)


def confirmed_or_refuse(
    context: AssetExecutionContext, confirm: str, phrase: str, *, what: str, job: str
) -> None:
    """An asset whose run cannot be taken back (numbered invoices issued, messages sent, records
    pushed to QuickBooks) runs from its job, sensor or schedule, or from a plain Materialize
    whose run config says `confirm: <phrase>` (issue 85: Materialize on sales_invoices issued 19
    gapless numbers with nothing but Dagster's launch dialog). Refused before any work else."""
    if not context.job_name.startswith(IMPLICIT_ASSET_JOB):
        return
    if " ".join(confirm.lower().split()) == phrase:
        return
    asset = context.asset_key.to_user_string()
    raise refused(
        f"Materializing {asset} {what}, which cannot be taken back, so a plain Materialize does "
        f'not run it: launch {job}, or give the run config confirm: "{phrase}".'
    )


def organization_or_refuse(
    system: Engine, organization: str, *, offboarded: bool = False
) -> Organization:
    """The organization a run's config names (slug or id), or a refusal naming it: a run's entry
    point finds it once (on the system engine, `system_database`) and hands the value down. An
    offboarded organization is refused before any work (its data are read-only), unless the
    entry point only reads or is the lifecycle's own (`offboarded`)."""
    try:
        org = find_organization(system, organization.strip())
    except UnknownOrganization:
        raise refused(f"There is no organization {organization!r}.") from None
    return _not_offboarded(org) if not offboarded else org


def known_organization(
    system: Engine, partition_key: str, *, offboarded: bool = False
) -> Organization:
    """The organization of a partition key (or of a launchpad's slug or id), refused when gone
    and, unless `offboarded`, when offboarded (as `organization_or_refuse`)."""
    try:
        org = find_organization(system, partition_key)
    except UnknownOrganization:
        raise refused(_outlived(partition_key)) from None
    return _not_offboarded(org) if not offboarded else org


def _outlived(slug: str) -> str:
    return f"There is no organization {slug!r} (its partition outlived it)."


class OrganizationConfig(Config):
    """A run config that names one organization, as the launchpad, a command or the run
    coordinator writes it (`organization` at the top of the op's config). The op asks it once for
    the value (`named_organization`) and hands that down; no op reads the slug itself."""

    organization: str = Field(description="The organization's slug or id.")

    def named_organization(self, system: Engine, *, offboarded: bool = False) -> Organization:
        """The organization named, or the run's refusal (`organization_or_refuse`)."""
        return organization_or_refuse(system, self.organization, offboarded=offboarded)


def partition_organization(
    system: Engine,
    context: AssetExecutionContext,
    *,
    offboarded: bool = False,
    slug_of: Callable[[str], str] | None = None,
) -> Organization:
    """The organization of a run of one partition, or the run's refusal (`known_organization`).
    `slug_of`: the organization's part of a key with more dimensions (a month, a year)."""
    key = context.partition_key
    return known_organization(system, slug_of(key) if slug_of else key, offboarded=offboarded)


def _not_offboarded(org: Organization) -> Organization:
    try:
        return writable(org)
    except Refused as exc:
        raise refused(str(exc)) from None


def _named(items: Sequence[str], separator: str) -> str:
    shown = separator.join(items[:NAMED])
    return shown + (f"{separator}and {len(items) - NAMED} more" if len(items) > NAMED else "")


def refusal_message(
    refusals: Sequence[tuple[str, str]], done: Sequence[str], noun: str = "partitions"
) -> str:
    """The one message of a run that refused some of its partitions.

    A run of one partition: that partition's sentence, prefixed by its key. A run of several:
    `2 of 5 partitions refused: a: …; b: … (done nonetheless: c, d, e)`, naming the first ten of
    each list and counting the rest.
    """
    if len(refusals) == 1 and not done:
        key, reason = refusals[0]
        return f"{key}: {reason}"
    named = _named(
        [f"{key}: {cut(reason, REASON_CHARS).rstrip('.')}" for key, reason in refusals], "; "
    )
    message = f"{len(refusals)} of {len(refusals) + len(done)} {noun} refused: {named}"
    return message + (f" (done nonetheless: {_named(list(done), ', ')})" if done else "")


class PartitionRefusals:
    """What a run over several partitions (a backfill, a schedule's batch) does with those it
    cannot do, so that every such run behaves alike:

    - every partition is attempted: one partition's refusal never stops the others;
    - each refusal is logged as an error when it happens, with its partition key;
    - the partitions done keep their results (`fail_keeping_the_done` records them);
    - at the end the run fails with one `Failure` (no retry: it would be refused alike) whose
      message is `refusal_message`'s.

    `log_error` is where refusals are logged (a Dagster context's `log.error`); `noun` names what
    the keys are when they are not partitions (housekeeping's organizations).
    """

    def __init__(
        self, keys: Iterable[str], log_error: Callable[[str], None], noun: str = "partitions"
    ):
        self.keys = list(keys)
        self.refusals: dict[str, str] = {}
        # partitions left undone on purpose, neither done nor refused (`leave_inactive`)
        self.left: list[str] = []
        self._log_error = log_error
        self._noun = noun

    def refuse(self, key: str, reason: str) -> None:
        """Records that partition `key` was not done, and why, and logs it as an error."""
        self._log_error(f"{key}: {reason}")
        if key not in self.keys:
            self.keys.append(key)
        self.refusals[key] = f"{self.refusals[key]}; {reason}" if key in self.refusals else reason

    def refuse_each(self, key: str, reasons: Iterable[str]) -> None:
        """`refuse` for each of `reasons` (none: the partition stays done)."""
        for reason in reasons:
            self.refuse(key, reason)

    def leave_inactive(
        self, key: str, org: Organization, log_warning: Callable[[str], None]
    ) -> bool:
        """In a run over several partitions (a backfill's range, a schedule's batch), leave an
        inactive (suspended or offboarded) organization's partition undone and unmaterialized, saying why; the run does
        not fail for it, as its sensors and schedules request nothing for it
        (lib/automation.py). A run of one partition was asked for it alone (the run
        coordinator cancels a backfill's), and does its work. An offboarded organization's
        partition is left in a run of several and refused in a run of one: its data are
        read-only. True: not to be done."""
        if org.offboarded:
            # read-only until deleted: nothing to do for it, in a run of one partition refused
            # before any work, in a run of several left like a suspended one's
            if len(self.keys) < 2:
                self.refuse(key, read_only_sentence(org.slug))
                return True
            log_warning(f"{key}: left as it is, {read_only_sentence(org.slug)}")
            self.left.append(key)
            return True
        if len(self.keys) < 2 or not org.suspended:
            return False
        log_warning(
            f"{key}: left as it is, {org.slug} is suspended ({org.suspension_reason}); "
            f"`invoice-pipelines organizations resume {org.slug}` and a new run pick it up"
        )
        self.left.append(key)
        return True

    def organizations(
        self,
        system: Engine,
        log_warning: Callable[[str], None],
        slug_of: Callable[[str], str] | None = None,
    ) -> Iterator[tuple[str, Organization]]:
        """Each partition key of the run with its organization, found once: a key whose
        organization is gone is refused, an inactive one's left (`leave_inactive`), and the
        others are the run's work. `slug_of`: as `partition_organization`'s."""
        for key in self.keys:
            slug = slug_of(key) if slug_of else key
            try:
                org = find_organization(system, slug)
            except UnknownOrganization:
                self.refuse(key, _outlived(slug))
                continue
            if not self.leave_inactive(key, org, log_warning):
                yield key, org

    @property
    def done(self) -> list[str]:
        """The keys neither refused nor left, in the run's order."""
        return [key for key in self.keys if key not in self.refusals and key not in self.left]

    def __bool__(self) -> bool:
        return bool(self.refusals)

    def message(self) -> str:
        return refusal_message(list(self.refusals.items()), self.done, self._noun)

    def failure(self, metadata: Mapping | None = None) -> Failure:
        """The run's one failure: the message, every refusal in its metadata (after `metadata`,
        what an op without partitions recorded of the work done)."""
        return Failure(
            self.message(),
            metadata={
                **(metadata or {}),
                "refused": MetadataValue.int(len(self.refusals)),
                "done": MetadataValue.int(len(self.done)),
                "refusals": MetadataValue.md(
                    markdown_table(
                        (self._noun.removesuffix("s"), "reason"), self.refusals.items(), limit=100
                    )
                ),
            },
            allow_retries=False,
        )

    def raise_if_any(self, metadata: Mapping | None = None) -> None:
        if self.refusals:
            raise self.failure(metadata)


def materialize_the_done(
    context: AssetExecutionContext,
    refusals: PartitionRefusals,
    metadata: Mapping[str, Mapping] | None = None,
) -> None:
    """A run over several partitions that left some (`leave_inactive`) materializes the done
    ones one by one, each with its metadata, and yields no output (a result for the range would
    materialize the left ones too): the asset has `output_required=False`."""
    for key in refusals.done:
        context.log_event(
            AssetMaterialization(
                context.asset_key, partition=key, metadata=(metadata or {}).get(key)
            )
        )


def fail_keeping_the_done(
    context: AssetExecutionContext,
    refusals: PartitionRefusals,
    metadata: Mapping[str, Mapping] | None = None,
    checks: Mapping[str, Sequence[AssetCheckResult]] | None = None,
    materialized: bool = False,
) -> NoReturn:
    """Ends an asset's run over several partitions that refused some of them: each partition
    done is materialized with its own metadata and check results, the refused ones are not (the
    UI shows them failed, and retrying the backfill's failed partitions runs them again), and the
    run fails with the refusals' one message.

    A result yielded for a partition range would materialize every partition of the range, the
    refused ones too; hence one materialization per partition done, and no output.
    `materialized`: the asset logged each partition's materialization when it was done.
    """
    if not materialized:
        materialize_the_done(context, refusals, metadata)
    for key in refusals.done:
        for check in (checks or {}).get(key, ()):
            context.log_event(evaluation(check, context.asset_key, key))
    raise refusals.failure()
