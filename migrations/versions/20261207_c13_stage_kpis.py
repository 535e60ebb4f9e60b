"""lifecycle_stages.kpis: each stage declares its KPIs (issue 21: funnel KPIs as data)

Stages whose keys are those of the presets (funnel, clm) get seed 000's KPIs for them, as the
presets declared them when this revision was written; other stages start with none.

Revision ID: c13_stage_kpis
Revises: c12_event_properties
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import JsonType

revision: str = "c13_stage_kpis"
down_revision: str | None = "c12_event_properties"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRESET_KPIS = {
    "awareness": [
        {
            "key": "visits",
            "name": "Visits 网站访问量",
            "measure": "EVENTS",
            "eventType": "page_view",
        },
        {
            "key": "exposure",
            "name": "Exposure 品牌曝光",
            "measure": "EVENTS",
            "eventType": "impression",
        },
    ],
    "consideration": [
        {
            "key": "inquiries",
            "name": "Inquiries 询盘数量",
            "measure": "EVENTS",
            "eventType": "inquiry",
        },
        {
            "key": "inquiry_conversion",
            "name": "Conversion 询盘成交率",
            "measure": "CONVERSION_RATE",
            "eventType": "inquiry",
        },
    ],
    "purchase": [
        {"key": "conversion_rate", "name": "Conversion rate 成交率", "measure": "CONVERSION_RATE"},
        {
            "key": "average_order_value",
            "name": "Average order value 平均订单价值",
            "measure": "AVERAGE_ORDER_VALUE",
        },
    ],
    "loyalty": [
        {"key": "repeat_rate", "name": "Repeat rate 复购率", "measure": "REPEAT_RATE"},
        {"key": "nps", "name": "NPS 净推荐值", "measure": "NPS"},
    ],
    "churned": [
        {"key": "churn_rate", "name": "Churn rate 客户流失率", "measure": "CHURN_RATE"},
        {
            "key": "win_back_rate",
            "name": "Win-back rate 流失客户召回率",
            "measure": "WIN_BACK_RATE",
        },
    ],
    "acquisition": [
        {
            "key": "visits",
            "name": "Visits 网站访问量",
            "measure": "EVENTS",
            "eventType": "page_view",
        },
        {"key": "conversion_rate", "name": "Conversion rate 成交率", "measure": "CONVERSION_RATE"},
    ],
    "growth": [
        {
            "key": "average_order_value",
            "name": "Average order value 平均订单价值",
            "measure": "AVERAGE_ORDER_VALUE",
        },
        {"key": "repeat_rate", "name": "Repeat rate 复购率", "measure": "REPEAT_RATE"},
    ],
    "maturity": [
        {"key": "repeat_rate", "name": "Repeat rate 复购率", "measure": "REPEAT_RATE"},
        {"key": "nps", "name": "NPS 净推荐值", "measure": "NPS"},
        {"key": "satisfaction", "name": "Satisfaction 客户满意度", "measure": "SATISFACTION"},
    ],
    "decline": [
        {
            "key": "churn_risk",
            "name": "Average churn risk 流失风险",
            "measure": "METRIC_AVERAGE",
            "metric": "CHURN_RISK",
        }
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("lifecycle_stages") as batch:
        batch.add_column(sa.Column("kpis", JsonType, nullable=False, server_default="[]"))
    stages = sa.table(
        "lifecycle_stages", sa.column("key", sa.String()), sa.column("kpis", JsonType)
    )
    for key, kpis in PRESET_KPIS.items():
        op.execute(stages.update().where(stages.c.key == key).values(kpis=kpis))


def downgrade() -> None:
    with op.batch_alter_table("lifecycle_stages") as batch:
        batch.drop_column("kpis")
