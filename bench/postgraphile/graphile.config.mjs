// PostGraphile v5 as a team would put it in front of the customer-360 database: the Amber
// preset, the connection-filter plugin (filters across relations, for the 4-leaf list query),
// and smart tags that declare the stage columns as references to lifecycle_stages (the
// database keeps stage keys as text, without a foreign key, so history survives a model
// change). Configured from the environment by serve.mjs.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { jsonPgSmartTags } from "postgraphile/utils";

const stage = (column, field, backwards) =>
  `(${column}) references lifecycle_stages (key)|@fieldName ${field}|@foreignFieldName ${backwards}`;

const StageReferences = jsonPgSmartTags({
  version: 1,
  config: {
    class: {
      customers: { tags: { foreignKey: stage("stage", "stageRecord", "customersInStage") } },
      stage_transitions: {
        tags: {
          foreignKey: [
            stage("from_stage", "fromStageRecord", "transitionsFrom"),
            stage("to_stage", "toStageRecord", "transitionsTo"),
          ],
        },
      },
    },
  },
});

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  plugins: [StageReferences],
  pgServices: [
    makePgService({ connectionString: process.env.DATABASE_URL, schemas: ["public"] }),
  ],
  grafserv: { graphiql: false, watch: false },
  schema: { connectionFilterRelations: true },
};

export default preset;
