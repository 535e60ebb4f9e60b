"""Root fields of the lifecycle: the model, its presets, setStage and the funnel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.context import Context
from api.permissions import ADMIN_ONLY, PROFILE_EDITORS, allow
from api.pii import no_pii_inference
from api.resolvers import lifecycle as lifecycle_resolvers
from api.schema.lifecycle import FunnelReport, LifecycleModel
from api.schema.lifecycle_mutations import LifecycleModelInput, LifecycleModelPayload, StagePayload
from domain.lifecycle import model as lifecycle

MAPPING = (
    "Where the profiles of stages the new model drops go: {oldStage: newStage}. Required for "
    "every dropped stage that holds profiles."
)


CHURN_DAYS = "Days without any order or activity before a customer churns (default 180)."


@strawberry.type
class LifecycleQueries:
    @strawberry.field
    async def lifecycle_model(self, info: Info[Context, None]) -> LifecycleModel:
        return LifecycleModel.of(await lifecycle.get_model(info.context.db))

    @strawberry.field(description="The names of the preset models applyLifecyclePreset takes.")
    def lifecycle_presets(self) -> list[str]:
        return list(lifecycle.PRESETS)

    @strawberry.field(
        description="Stage funnel: how many customers are in / entered each stage, conversion "
        "to the next stage, time in stage, and the stage's key indicators.",
        extensions=no_pii_inference(),
    )
    async def funnel(
        self,
        info: Info[Context, None],
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        segment: strawberry.ID | None = None,
    ) -> FunnelReport:
        return await lifecycle_resolvers.funnel(info.context, from_, to, segment)


@strawberry.type
class LifecycleMutations:
    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Replace the lifecycle model, validated whole; profiles in dropped stages "
        "move as stageMapping says.",
    )
    async def configure_lifecycle(
        self,
        info: Info[Context, None],
        input: LifecycleModelInput,
        stage_mapping: Annotated[JSON | None, strawberry.argument(description=MAPPING)] = None,
    ) -> LifecycleModelPayload:
        return await lifecycle_resolvers.configure(info.context, input, stage_mapping)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="configureLifecycle with a preset model: funnel or clm (lifecyclePresets).",
    )
    async def apply_lifecycle_preset(
        self,
        info: Info[Context, None],
        preset: str,
        stage_mapping: Annotated[JSON | None, strawberry.argument(description=MAPPING)] = None,
        churn_days: Annotated[int | None, strawberry.argument(description=CHURN_DAYS)] = None,
    ) -> LifecycleModelPayload:
        return await lifecycle_resolvers.apply_preset(
            info.context, preset, stage_mapping, churn_days
        )

    @strawberry.mutation(
        extensions=allow(*PROFILE_EDITORS, force=ADMIN_ONLY),
        description="Move a customer along an edge of the model; `force` (admins) allows any "
        "stage of the model.",
    )
    async def set_stage(
        self,
        info: Info[Context, None],
        customer: strawberry.ID,
        stage: str,
        reason: str | None = None,
        force: bool | None = False,
    ) -> StagePayload:
        return await lifecycle_resolvers.set_stage(
            info.context, customer, stage, reason, bool(force)
        )
