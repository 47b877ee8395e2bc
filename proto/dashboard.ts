/**
 * The read-only JSON API behind the dashboard and `arbor status` (GET /v1/status,
 * /v1/shards, /v1/workers, /v1/series; /v1/events is a server-sent event stream of
 * EventItem). Open to anyone who can reach the coordinator: it holds no secrets.
 */
import { ROUTES } from './routes.ts';
import { type Static, Type } from '@sinclair/typebox';

const Count = (description: string) => Type.Integer({ minimum: 0, description });
const Num = (description: string) => Type.Number({ description });
const Nullable = <T extends ReturnType<typeof Type.Number>>(schema: T) => Type.Union([schema, Type.Null()]);

export const JobPhaseSchema = Type.Union([
  Type.Literal('pretraining'),
  Type.Literal('routing'),
  Type.Literal('training'),
  Type.Literal('done'),
]);

export const StatusSchema = Type.Object({
  phase: JobPhaseSchema,
  paused: Type.Boolean({ description: 'the operator paused leasing (/v1/admin/pause)' }),
  data: Type.String(),
  model: Type.Object({
    depth: Count('tree depth D'),
    frozen: Count('frozen levels K'),
    leaf: Count('leaf width L'),
  }),
  started_ms: Count('when the job was created'),
  now_ms: Count('server clock'),
  progress: Type.Object({
    trained_samples: Count('samples trained by accepted results, capped per shard at its budget'),
    budget_samples: Count('samples the job trains in all'),
    fraction: Num('trained / budget'),
    eta_s: Nullable(Num('estimated seconds left (null until training has a rate)')),
  }),
  pretraining: Type.Union(
    [
      Type.Object({
        epoch: Count('epoch under way, from 1'),
        epochs: Count('pretraining epochs'),
        fraction: Num('share of pretraining done'),
      }),
      Type.Null(),
    ],
    { description: 'while the coordinator pretrains the top of the tree, else null' },
  ),
  accuracy: Type.Object({
    hard_test_acc: Nullable(Num('latest evaluation of the assembled model, hard inference')),
    val_loss: Nullable(Num('mean shard validation loss at the latest evaluation')),
    central_hard_test_acc: Nullable(Num('the central twin, when known')),
  }),
  workers: Type.Object({
    connected: Count('connected now'),
    known: Count('ever seen'),
    none_since_ms: Type.Union([Count('since when no volunteer has been connected'), Type.Null()], {
      description: 'null while a volunteer is connected',
    }),
  }),
  units: Type.Record(Type.String(), Count('units in this state')),
  results: Type.Object({ accepted: Count('merged'), rejected: Count('rejected') }),
  traffic: Type.Object({
    model_bytes: Count('weights and deltas that crossed the sockets'),
    data_bytes: Count('shard data blobs served'),
    bytes_per_sample: Num('model bytes per trained sample'),
    dp_bytes_per_sample: Num('what data-parallel training would move per sample'),
    comm_reduction: Nullable(Num('dp_bytes_per_sample / bytes_per_sample')),
  }),
  storage: Type.Object({
    blobs: Count('blob files the coordinator keeps (weights, deltas, data, checkpoints)'),
    bytes: Count('their size; blobs nothing needs are deleted after a while'),
  }),
  routing_imbalance: Nullable(Num('largest shard / ideal size (null before routing)')),
  crowd: Type.Object(
    {
      utilization: Num("share of the volunteers' connected time spent on work that was merged"),
      idle_fraction: Num('share spent connected without a unit'),
      wasted_fraction: Num('share spent on work that was never merged'),
    },
    { description: "every volunteer's time since it connected, over the recorded events" },
  ),
});
export type Status = Static<typeof StatusSchema>;

export const ShardInfoSchema = Type.Object({
  id: Count('shard index, left to right'),
  samples: Count('training samples routed here'),
  version: Count('merged results'),
  in_flight: Count('units leased now'),
  mean_staleness: Nullable(Num('mean versions an accepted result was behind when merged (null before one)')),
  trained_samples: Count('samples trained'),
  budget_samples: Count('samples this shard trains in all'),
  val_loss: Nullable(Num('validation loss of the current subtree')),
  accepted: Count('results merged'),
  rejected: Count('results rejected'),
  health: Type.Union([
    Type.Literal('idle'),
    Type.Literal('ok'),
    Type.Literal('warn'),
    Type.Literal('bad'),
    Type.Literal('done'),
  ]),
  class_mix: Type.Array(Count('samples of this class')),
});
export const ShardsSchema = Type.Object({
  frozen: Count('levels of the frozen top: the drawn tree'),
  shards: Type.Array(ShardInfoSchema),
});
export type ShardInfo = Static<typeof ShardInfoSchema>;
export type Shards = Static<typeof ShardsSchema>;

export const ShardSamplesSchema = Type.Object({
  shard: Count('shard index'),
  width: Count('image width (0 when the input is not an image)'),
  height: Count('image height'),
  images: Type.Array(
    Type.Object({
      label: Count('class'),
      pixels: Type.String({ description: 'base64 of width·height bytes, 0–255' }),
    }),
  ),
});
export type ShardSamples = Static<typeof ShardSamplesSchema>;

export const WorkerInfoSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  token_name: Type.Union([
    Type.String({ description: 'the name its volunteer token was issued to (arbor token create --name)' }),
    Type.Null(),
  ]),
  backend: Type.String(),
  samples_per_s: Nullable(Num('speed measured at hello (this connection)')),
  connected: Type.Boolean(),
  units_done: Count('accepted units'),
  credit: Count('samples trained in accepted units'),
  rejections: Count('rejected results'),
  last_seen_ms: Count('last contact'),
  standing: Type.Union([Type.Literal('good'), Type.Literal('warned'), Type.Literal('poor')]),
});
export const WorkersSchema = Type.Object({
  total: Count('workers ever seen'),
  offset: Count('first row'),
  workers: Type.Array(WorkerInfoSchema, { description: 'by credit, highest first' }),
});
export type WorkerInfo = Static<typeof WorkerInfoSchema>;
export type Workers = Static<typeof WorkersSchema>;

export const SeriesSchema = Type.Object({
  evals: Type.Array(
    Type.Object({
      at_ms: Count('time'),
      accepted: Count('merged results so far'),
      hard_test_acc: Num('hard test accuracy'),
      val_loss: Num('validation loss'),
    }),
  ),
  rejections: Type.Array(
    Type.Object({ at_ms: Count('time'), unit: Type.String(), worker: Type.String(), reason: Type.String() }),
  ),
  top: Type.Union(
    [
      Type.Object({
        version: Count('path-node updates merged into the top'),
        routing_version: Count('re-routes so far'),
        updates: Count('top updates'),
        dropped: Count('path deltas dropped (stale, or worse on validation)'),
        reroutes: Type.Array(
          Type.Object({
            at_ms: Count('time'),
            migrated: Count('training samples that changed shard'),
            imbalance: Num('largest shard over the mean shard after it'),
            seconds: Num('time the re-route took'),
          }),
        ),
        last_update: Type.Array(
          Type.Object({
            node: Count('top node (0 = root, children 2n+1 and 2n+2)'),
            size: Num('L2 size of its latest update'),
            version: Count('top version of that update'),
          }),
        ),
      }),
      Type.Null(),
    ],
    { description: "the slow top's movement (null when the top is frozen)" },
  ),
});
export type Series = Static<typeof SeriesSchema>;

export const EventItemSchema = Type.Object({
  id: Count('event id'),
  at_ms: Count('time'),
  kind: Type.String({
    description:
      'connected, disconnected, leased, accepted, rejected, expired, released, evaluated, phase, …',
  }),
  data: Type.Unknown(),
});
export type EventItem = Static<typeof EventItemSchema>;

export const JoinSchema = Type.Object({
  package_path: Type.Union([Type.String(), Type.Null()], {
    description: 'where the volunteer package is served (null while it is being built or if it failed)',
  }),
  version: Type.String({ description: 'Arbor version of the package' }),
  token_required: Type.Boolean({ description: 'whether workers must present a token' }),
  enrolment: Type.Boolean({
    description: 'open enrolment: a worker without a token asks POST /v1/enrol for one',
  }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'why the package is not available' }),
});
export type Join = Static<typeof JoinSchema>;

/**
 * The one command a volunteer runs on a machine with Node.js 20 and nothing else, given the
 * coordinator's http base: Node fetches the join script and imports it; the script fetches
 * the self-contained worker (once) and runs it with the arguments after `--`.
 */
export function joinCommand(httpBase: string, join: Join): string | null {
  if (join.package_path === null) return null;
  const ws = httpBase.replace(/^http/, 'ws');
  return (
    `node -e "${joinScript(httpBase)}" -- --url ${ws}` +
    (join.token_required && !join.enrolment ? ' --token YOUR_TOKEN' : '')
  );
}

/** What `node -e` runs in the join command: fetch the coordinator's join script and import it. */
export function joinScript(httpBase: string): string {
  return (
    `fetch('${httpBase}${ROUTES.workerJoin}').then(r=>r.text())` +
    `.then(s=>import('data:text/javascript,'+encodeURIComponent(s)))` +
    `.catch(e=>{console.error('arbor: '+(e.cause??e).message);process.exit(1)})`
  );
}
