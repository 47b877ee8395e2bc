/**
 * Every message on the wire, as TypeBox schemas. WebSocket frames are JSON objects
 * discriminated on `type`; HTTP bodies are listed at the end. Objects are closed
 * (`additionalProperties: false`): adding a field is a protocol version bump.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { ERRORS, type ErrorCode } from './errors.ts';

const closed = { additionalProperties: false } as const;

const Id = (description: string) =>
  Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$', description });
const Token = (description: string) => Type.String({ minLength: 1, maxLength: 512, description });
const Text = (maxLength: number, description: string) => Type.String({ maxLength, description });
const Count = (description: string, minimum = 0) =>
  Type.Integer({ minimum, maximum: 2 ** 53 - 1, description });
const Finite = (description: string, minimum?: number) =>
  Type.Number(
    minimum === undefined
      ? { minimum: -Number.MAX_VALUE, maximum: Number.MAX_VALUE, description }
      : { minimum, maximum: Number.MAX_VALUE, description },
  );

export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lowercase hex SHA-256' });

export const BlobRef = Type.Object(
  { sha256: Sha256, bytes: Count('size in bytes') },
  { ...closed, description: 'a content-addressed blob, fetched with GET /v1/blobs/:sha256' },
);

// ---------------------------------------------------------------- worker -> coordinator

export const Capabilities = Type.Object(
  {
    backend: Text(32, 'tfjs backend, e.g. "wasm", "tensorflow", "webgl"'),
    threads: Count('CPU threads available to training', 1),
    gpu: Type.Boolean({ description: 'whether a GPU backend is in use' }),
    samples_per_s: Finite('measured training speed', 0),
  },
  closed,
);

export const Hello = Type.Object(
  {
    type: Type.Literal('hello'),
    protocol: Count('protocol version the worker speaks (must equal PROTOCOL_VERSION)', 1),
    token: Type.Optional(Token('worker auth token, if the coordinator requires one')),
    name: Text(64, 'human-readable worker name'),
    capabilities: Capabilities,
  },
  { ...closed, description: 'first frame after connecting' },
);

export const RequestWork = Type.Object(
  {
    type: Type.Literal('request_work'),
    cached_shards: Type.Optional(
      Type.Array(Count('shard id'), {
        maxItems: 64,
        description: 'shards whose data the worker holds now: units of these are preferred within a round',
      }),
    ),
  },
  { ...closed, description: 'ask for a unit; answered by assign or no_work' },
);

export const Heartbeat = Type.Object(
  {
    type: Type.Literal('heartbeat'),
    unit_id: Id('unit being trained'),
    lease_token: Token('lease token from assign'),
    step: Count('steps done so far'),
    total_steps: Count('steps in the unit', 1),
    saved_samples: Type.Optional(
      Count(
        'samples of this unit the worker has saved as a checkpoint it can hand in later, should it go away (a browser tab)',
      ),
    ),
    loss: Type.Optional(
      Finite(
        'cross-entropy of the last reported batch: the data term alone, without the hardening, balance or path regularizers (which can make the objective negative)',
        0,
      ),
    ),
  },
  { ...closed, description: 'heartbeat for a unit; extends its lease' },
);

export const Release = Type.Object(
  {
    type: Type.Literal('release'),
    unit_id: Id('unit being given back'),
    lease_token: Token('lease token from assign'),
    reason: Text(256, 'why the worker gives the unit up'),
  },
  { ...closed, description: 'give a leased unit back without a result' },
);

/** Every frame a worker may send, in the order the docs list them. */
export const WORKER_MESSAGES = { Hello, RequestWork, Heartbeat, Release } as const;
export const WorkerMessage = Type.Union(Object.values(WORKER_MESSAGES));
export type WorkerMessage = Static<typeof WorkerMessage>;

// ---------------------------------------------------------------- coordinator -> worker

export const Limits = Type.Object(
  {
    max_result_bytes: Count('largest result body accepted by PUT /v1/units/:id/result', 1),
    max_frame_bytes: Count('largest WebSocket frame accepted', 1),
  },
  closed,
);

export const Welcome = Type.Object(
  {
    type: Type.Literal('welcome'),
    worker_id: Id('id assigned to this worker'),
    heartbeat_ms: Count('send progress at least this often while holding a lease', 1),
    limits: Limits,
  },
  { ...closed, description: 'answer to hello' },
);

export const Recipe = Type.Object(
  {
    local_epochs: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1e6,
      description: 'passes over the shard (a fraction: a slice of it, in shuffled order)',
    }),
    batch: Count('batch size', 1),
    lr: Finite('learning rate', 0),
    optimizer: Type.Union([Type.Literal('adam'), Type.Literal('sgd')]),
    hardening: Finite('routing hardening weight', 0),
    leak: Type.Number({ minimum: 0, maximum: 1, description: 'region leak probability' }),
    seed: Count('seed for shuffling and leak'),
    fresh_optimizer: Type.Optional(
      Type.Boolean({
        description:
          "true: start Adam's state from zero, not from this worker's last unit of the shard (quorum: two workers must compute a unit alike)",
      }),
    ),
    schedule: Type.Object(
      {
        epochs: Count("epochs of the shard's whole schedule", 1),
        from: Type.Number({ minimum: 0, maximum: 1, description: 'where this unit starts in it (fraction)' }),
        to: Type.Number({ minimum: 0, maximum: 1, description: 'where it ends (fraction)' }),
      },
      {
        ...closed,
        description:
          "the unit trains this window of its shard's schedule (soft, hardening, hard leaves), so that short units follow one long recipe",
      },
    ),
  },
  closed,
);

export const AssignedTop = Type.Object(
  {
    version: Count('top version the path delta is computed against'),
    levels: Count('top levels K above the subtree: the path has K nodes', 1),
    blob: {
      ...BlobRef,
      description: 'the top K levels (format arbor-top-1): the path nodes are read from it',
    },
    siblings_blob: {
      ...BlobRef,
      description:
        'per training sample of the shard, the outputs of the K subtrees off its path (format arbor-siblings-1)',
    },
    balance: Finite("weight of the path nodes' balance term", 0),
  },
  {
    ...closed,
    description:
      'slow top: also train the K branch nodes above the subtree and send their delta as path.weight and path.bias',
  },
);

export const UnitLineage = Type.Object(
  {
    origin: Id('the unit first cut at this place in the shard schedule: its parts and retries share it'),
    part: Type.Optional(
      Count(
        'this part of the origin starts here in the shard schedule, parts per million (absent: the unit as cut)',
      ),
    ),
    retry: Count('how many times refused results had this stretch reissued'),
  },
  { ...closed, description: 'what a unit is (its id is only its name, never parsed)' },
);

export const Assign = Type.Object(
  {
    type: Type.Literal('assign'),
    unit_id: Id('work unit id'),
    lineage: UnitLineage,
    lease_token: Token('fences progress, release and result for this lease'),
    shard: Count('data shard index'),
    base_version: Count('model version the delta is computed against'),
    deadline_ms: Count('lease expiry, epoch milliseconds'),
    base_blob: BlobRef,
    data_blob: BlobRef,
    recipe: Recipe,
    subtree_depth: Count('depth of the assigned subtree'),
    leaf_width: Count('neurons per leaf', 1),
    input_width: Count('input features', 1),
    output_width: Count('output classes', 1),
    activation: Type.Union([Type.Literal('relu'), Type.Literal('tanh')]),
    top: Type.Optional(AssignedTop),
  },
  { ...closed, description: 'a leased work unit' },
);

export const NoWork = Type.Object(
  {
    type: Type.Literal('no_work'),
    retry_after_ms: Count('ask again after this long'),
    done: Type.Optional(Type.Boolean({ description: 'the job is finished: there will be no more work' })),
    reason: Type.Optional(
      Text(256, 'why there is no unit for this worker now (job paused, standing after rejected results)'),
    ),
  },
  { ...closed, description: 'nothing to do right now' },
);

export const Cancel = Type.Object(
  {
    type: Type.Literal('cancel'),
    unit_id: Id('unit to stop working on'),
    reason: Text(256, 'why'),
  },
  { ...closed, description: 'stop a unit; its lease is void' },
);

export const ErrorCodeSchema = Type.Union(
  (Object.keys(ERRORS) as ErrorCode[]).map((code) => Type.Literal(code)),
  { description: 'a code from the error catalogue' },
);

export const ErrorMessage = Type.Object(
  {
    type: Type.Literal('error'),
    code: ErrorCodeSchema,
    message: Text(1024, 'what went wrong'),
    retryable: Type.Boolean(),
  },
  { ...closed, description: 'a ProtocolError sent to the worker' },
);

/** Every frame the coordinator may send, in the order the docs list them. */
export const COORDINATOR_MESSAGES = { Welcome, Assign, NoWork, Cancel, Error: ErrorMessage } as const;
export const CoordinatorMessage = Type.Union(Object.values(COORDINATOR_MESSAGES));
export type CoordinatorMessage = Static<typeof CoordinatorMessage>;

// ---------------------------------------------------------------- HTTP bodies

export const ResultMetrics = Type.Object(
  {
    train_loss: Finite(
      'cross-entropy of the last reported batch (the data term, as in heartbeat.loss); 0 when none was measured',
      0,
    ),
    samples: Count('samples seen'),
    seconds: Finite('wall-clock training time', 0),
  },
  { ...closed, description: 'sent with PUT /v1/units/:id/result (header x-arbor-metrics or JSON part)' },
);
export type ResultMetrics = Static<typeof ResultMetrics>;

export const ResultResponse = Type.Object(
  {
    status: Type.Union([Type.Literal('accepted'), Type.Literal('rejected')]),
    reason: Type.Optional(Text(1024, 'why the result was rejected')),
    version: Type.Optional(Count('model version after accepting')),
    held: Type.Optional(
      Type.Boolean({ description: 'quorum mode: valid, held until a second worker computes the unit alike' }),
    ),
    credit: Type.Optional(Count('the volunteer’s credit after this result (samples accepted)')),
    rank: Type.Optional(Count('the volunteer’s place by credit, from 1')),
    volunteers: Type.Optional(Count('volunteers the job has seen')),
    job_progress: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: 'share of the job’s training budget done' }),
    ),
  },
  { ...closed, description: 'answer to PUT /v1/units/:id/result' },
);
export type ResultResponse = Static<typeof ResultResponse>;

export const EnrolRequest = Type.Object(
  { name: Text(64, 'the volunteer name shown on the dashboard') },
  { ...closed, description: 'body of POST /v1/enrol (open enrolment only)' },
);
export type EnrolRequest = Static<typeof EnrolRequest>;

export const EnrolResponse = Type.Object(
  {
    token: Token('the new volunteer token: keep it, it is shown once'),
    token_id: Id('public id of the token'),
    worker_id: Id('the worker id this token fixes'),
  },
  { ...closed, description: 'answer to POST /v1/enrol' },
);
export type EnrolResponse = Static<typeof EnrolResponse>;

/** Every schema that the docs render, in order. */
export const WIRE: Readonly<Record<'worker' | 'coordinator' | 'http', Record<string, TSchema>>> = {
  worker: WORKER_MESSAGES,
  coordinator: COORDINATOR_MESSAGES,
  http: { ResultMetrics, ResultResponse, EnrolRequest, EnrolResponse },
};

export type Hello = Static<typeof Hello>;
export type RequestWork = Static<typeof RequestWork>;
export type Heartbeat = Static<typeof Heartbeat>;
export type Release = Static<typeof Release>;
export type Welcome = Static<typeof Welcome>;
export type Assign = Static<typeof Assign>;
export type AssignedTop = Static<typeof AssignedTop>;
export type NoWork = Static<typeof NoWork>;
export type Cancel = Static<typeof Cancel>;
export type ErrorMessage = Static<typeof ErrorMessage>;
