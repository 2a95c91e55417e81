/**
 * n8n's workflow check: n8n itself runs a small workflow that publishes a message to RabbitMQ
 * with the credentials the topology operator generated for n8n's user, and the check reads the
 * message back. Everything the pod needs comes from Git (the workflow and the helper program, in
 * a ConfigMap) and from the generated Secret; nothing is done in the UI (docs/adr/0036).
 *
 * The check runs in the n8n image, on a throwaway SQLite database in an emptyDir: the CLI imports
 * the credential and the workflow there and executes it, so n8n's own database (SQLite on its
 * volume, or PostgreSQL) and the running instance are never touched. The queue is the check's own:
 * declared fresh before the run (the RabbitMQ node of n8n 2.40 only checks that its queue
 * exists), expiring by itself should the check die, and deleted when it ends.
 */
import { k8s } from 'cdk8s-plus-34';
import { type CheckpointProps, WITHIN, WITHIN_SLACK_SECONDS } from '../lib/model/checkpoint';
import { resources } from '../lib/model/resources';
import { DEFAULT_EXCHANGE_RESOURCE, permits, RabbitmqConnection } from './rabbitmq';
import { IMAGES } from './versions';

/** The ConfigMap holding the workflow and the helper program, in n8n's namespace. */
export const WORKFLOW_CHECK_CONFIG_MAP = 'n8n-workflow-check';
/** Where the ConfigMap is mounted in the check pod. */
const CHECK_DIR = '/check';
/** The emptyDir holding n8n's user folder (settings, encryption key, SQLite database) for one run. */
const SCRATCH_DIR = '/scratch';
/** Where the n8n image installs n8n (its RabbitMQ node's amqplib resolves from n8n-nodes-base there). */
export const N8N_PACKAGE_ROOT = '/usr/local/lib/node_modules/n8n';

/**
 * The longest one command of the helper program (and the publish check's program) waits for
 * RabbitMQ: amqplib's connection and calls have no limit of their own, so a broker that takes the
 * connection and never answers (or a NetworkPolicy that drops the packets) would hold the Job to
 * its deadline, with no report. A broker answers in milliseconds.
 */
export const AMQP_LIMIT_SECONDS = 30;
/**
 * The longest one n8n CLI command of the check runs (`within`): it loads every node package, and
 * the first one creates the throwaway database (n8n's migrations) on a pod with a small CPU
 * request; `execute` then runs the workflow. Without a limit, a run stuck on a broker held the Job
 * to its deadline, with no report.
 */
export const N8N_CLI_LIMIT_SECONDS = 240;
/** What Node.js may take to start a program before its limit runs, on a pod with a small CPU request. */
export const NODE_START_SECONDS = 5;
/** The longest a program that talks AMQP runs: its start, then its limit. */
export const AMQP_PROGRAM_SECONDS = NODE_START_SECONDS + AMQP_LIMIT_SECONDS;
/** The program's commands (declare, credentials, receive, delete) and the CLI's (two imports, execute). */
const PROGRAM_RUNS = 4;
const CLI_RUNS = 3;
/** The check script's worst case: every command at its limit. */
export const WORKFLOW_CHECK_SECONDS = PROGRAM_RUNS * AMQP_PROGRAM_SECONDS + CLI_RUNS * (N8N_CLI_LIMIT_SECONDS + WITHIN_SLACK_SECONDS);

/**
 * Node.js for a program that talks AMQP: ends it when `AMQP_SECONDS` (required: the Job sets it)
 * pass before its work is done, with a message that starts with `step` (a JavaScript expression)
 * and names the broker; the program clears `limit` once done. The timer is kept referenced, so
 * that a call that never settles cannot let the program end as if it succeeded. No single
 * quotes: it also runs as `node -e '...'`.
 */
export function amqpLimit(step: string): string {
  return [
    'const limitSeconds = Number(process.env.AMQP_SECONDS);',
    'if (!(limitSeconds > 0)) {',
    '  console.error("AMQP_SECONDS unset (the Job sets it)");',
    '  process.exit(2);',
    '}',
    'const limit = setTimeout(() => {',
    `  console.error(${step} + ": RabbitMQ at " + process.env.RABBITMQ_HOST + ":" + process.env.RABBITMQ_PORT + " did not answer within " + limitSeconds + " s");`,
    '  process.exit(1);',
    '}, limitSeconds * 1000);',
  ].join('\n');
}

/**
 * Upstream facts the workflow relies on, from the npm packages of the pinned release, n8n 2.40.2
 * and n8n-nodes-base 2.40.2:
 * - `n8n execute` takes `--id` (the `--file` flag is refused), runs from the workflow's
 *   `n8n-nodes-base.manualTrigger` node (packages/cli dist/commands/execute.js, dist/utils.js
 *   findCliWorkflowStart, dist/constants.js STARTING_NODES) and exits 1 when the execution fails
 *   (dist/commands/base-command.js `finally`);
 * - `n8n import:credentials --input` reads an array and encrypts a plain `data` object with the
 *   instance's key (dist/commands/import/credentials.js readCredentials); `import:workflow --input`
 *   keeps the workflow's `id`, assigns it to the instance owner and leaves it inactive
 *   (dist/commands/import/workflow.js, dist/services/import.service.js);
 * - `execute` does not load CREDENTIALS_OVERWRITE_DATA (only `start` and `worker` do,
 *   dist/commands/start.js): the imported credential carries the data itself;
 * - a workflow ID is 1 to 21 characters (dist/utils.js isWorkflowIdValid).
 */
export const N8N_WORKFLOW_FACTS = {
  /** nodes/ManualTrigger/ManualTrigger.node.js: `version: 1`, no parameters but a notice. */
  manualTrigger: { type: 'n8n-nodes-base.manualTrigger', versions: [1], parameters: ['notice'] },
  /**
   * nodes/RabbitMQ/RabbitMQ.node.js: `version: [1, 1.1, 1.2]`, credential type `rabbitmq`; in
   * mode `queue` the node only checks that the queue exists (GenericFunctions.js
   * rabbitmqConnectQueue: `checkQueue` unless `options.assertQueue`, which the node's options do
   * not offer) and sends each item with `sendToQueue`, i.e. through the default exchange.
   */
  rabbitmq: {
    type: 'n8n-nodes-base.rabbitmq',
    versions: [1, 1.1, 1.2],
    credential: 'rabbitmq',
    parameters: ['operation', 'mode', 'queue', 'exchange', 'exchangeType', 'routingKey', 'sendInputData', 'message', 'options'],
    operations: ['sendMessage', 'deleteMessage'],
    modes: ['queue', 'exchange'],
    options: ['alternateExchange', 'arguments', 'autoDelete', 'durable', 'exclusive', 'headers'],
  },
  /** credentials/RabbitMQ.credentials.js: the fields of the `rabbitmq` credential type. */
  rabbitmqCredential: ['hostname', 'port', 'username', 'password', 'vhost', 'ssl', 'passwordless', 'ca', 'cert', 'key', 'passphrase'],
  maxWorkflowIdLength: 21,
} as const;

const WORKFLOW_ID = 'homelabCheckpoint';
const CREDENTIAL_ID = 'homelabRabbitmq';
const CREDENTIAL_NAME = 'RabbitMQ (homelab checkpoint)';
/** What the workflow publishes; the check expects exactly this body. */
export const CHECK_MESSAGE = 'homelab checkpoint: published by an n8n workflow';
/**
 * Unused this long, the broker deletes the check's queue by itself (x-expires, milliseconds): as
 * long as the check may run, so that the queue outlasts every step at its limit between its
 * declaration and the read (publishing does not count as a use), and goes should the check die.
 */
const QUEUE_EXPIRES_MS = WORKFLOW_CHECK_SECONDS * 1000;

/**
 * The check's queue on the user's vhost: the first candidate the user may declare and delete
 * (configure), read from (read), that is not a queue of the config; the user must also be allowed
 * to publish through the default exchange (write on `amq.default`). `undefined` when the
 * permissions admit none of them.
 */
export function workflowCheckQueue(connection: RabbitmqConnection): string | undefined {
  const { configure, write, read } = connection.permissions;
  if (!permits(write, DEFAULT_EXCHANGE_RESOURCE)) return undefined;
  const candidates = [`${connection.user}.checkpoint`, 'homelab.checkpoint', `checkpoint.${connection.user}`];
  return candidates.find((queue) => !connection.declaredQueues.includes(queue) && permits(configure, queue) && permits(read, queue));
}

/** The workflow n8n runs: a manual trigger, then the RabbitMQ node publishing CHECK_MESSAGE to `queue`. */
function checkWorkflow(queue: string): Record<string, unknown> {
  const { manualTrigger, rabbitmq } = N8N_WORKFLOW_FACTS;
  return {
    id: WORKFLOW_ID,
    name: 'Homelab checkpoint: publish to RabbitMQ',
    active: false,
    nodes: [
      { id: '5b0c6f4e-8d0a-4f3e-9a51-2f1d3c7e0a01', name: 'Start', type: manualTrigger.type, typeVersion: 1, position: [0, 0], parameters: {} },
      {
        id: '5b0c6f4e-8d0a-4f3e-9a51-2f1d3c7e0a02',
        name: 'Publish',
        type: rabbitmq.type,
        typeVersion: 1.2,
        position: [220, 0],
        parameters: { operation: 'sendMessage', mode: 'queue', queue, sendInputData: false, message: CHECK_MESSAGE, options: {} },
        credentials: { [rabbitmq.credential]: { id: CREDENTIAL_ID, name: CREDENTIAL_NAME } },
      },
    ],
    connections: { Start: { main: [[{ node: 'Publish', type: 'main', index: 0 }]] } },
    settings: { executionOrder: 'v1' },
  };
}

/**
 * The helper program (Node.js, run by the image's node with the AMQP client n8n's RabbitMQ node
 * uses): `credentials` prints the credential to import, from the environment; `declare` makes
 * the check's queue fresh; `receive` takes one message and compares it; `delete` removes the queue.
 * Its limit runs from its first line, loading the client included.
 */
const CHECK_PROGRAM = String.raw`const step = process.argv[2];
${amqpLimit('"n8n workflow check: " + step')}
const path = require("path");
const env = process.env;
const nodes = path.dirname(require.resolve("n8n-nodes-base/package.json", { paths: [env.N8N_ROOT] }));
const amqp = require(require.resolve("amqplib", { paths: [nodes] }));
const queue = env.CHECK_QUEUE;
const url = () =>
  "amqp://" + encodeURIComponent(env.RABBITMQ_USERNAME) + ":" + encodeURIComponent(env.RABBITMQ_PASSWORD) +
  "@" + env.RABBITMQ_HOST + ":" + env.RABBITMQ_PORT + "/" + encodeURIComponent(env.RABBITMQ_VHOST);
async function withChannel(use) {
  const connection = await amqp.connect(url());
  try {
    return await use(await connection.createChannel());
  } finally {
    await connection.close();
  }
}
const commands = {
  credentials: async () => {
    const data = { hostname: env.RABBITMQ_HOST, port: Number(env.RABBITMQ_PORT), vhost: env.RABBITMQ_VHOST, username: env.RABBITMQ_USERNAME, password: env.RABBITMQ_PASSWORD };
    process.stdout.write(JSON.stringify([{ id: env.CREDENTIAL_ID, name: env.CREDENTIAL_NAME, type: "rabbitmq", data }]));
  },
  declare: () =>
    withChannel(async (channel) => {
      await channel.deleteQueue(queue);
      await channel.assertQueue(queue, { durable: true, arguments: { "x-expires": Number(env.QUEUE_EXPIRES_MS) } });
      console.log("queue " + queue + " declared on vhost " + env.RABBITMQ_VHOST);
    }),
  receive: () =>
    withChannel(async (channel) => {
      const message = await channel.get(queue, { noAck: false });
      if (!message) throw new Error("queue " + queue + " is empty: the workflow published nothing");
      channel.ack(message);
      const body = message.content.toString();
      if (body !== env.CHECK_MESSAGE) throw new Error("queue " + queue + " held " + JSON.stringify(body) + ", not the workflow's message");
      console.log("read the workflow's message back from queue " + queue);
    }),
  delete: () =>
    withChannel(async (channel) => {
      await channel.deleteQueue(queue);
      console.log("queue " + queue + " deleted");
    }),
};
const command = commands[step];
if (!command) {
  console.error("usage: check.js credentials|declare|receive|delete");
  process.exit(2);
}
Promise.resolve(command()).then(
  () => clearTimeout(limit),
  (error) => {
    console.error("n8n workflow check: " + step + ": " + error.message);
    process.exit(1);
  },
);
`;

/**
 * The check's script (`sh -ec`): fresh queue, import, execute, read back; the queue goes in any
 * case. Each step within its limit (the program's own, `within` for n8n's CLI): at most
 * WORKFLOW_CHECK_SECONDS.
 */
const CHECK_SCRIPT = String.raw`: "${'$'}{N8N_CLI_SECONDS:?unset (the Job sets it)}"
${WITHIN}
check() { node "${CHECK_DIR}/check.js" "$@"; }
check declare
trap 'check delete || true' EXIT
check credentials > "$N8N_USER_FOLDER/credentials.json"
within "$N8N_CLI_SECONDS" n8n import:credentials --input="$N8N_USER_FOLDER/credentials.json"
rm "$N8N_USER_FOLDER/credentials.json"
within "$N8N_CLI_SECONDS" n8n import:workflow --input="${CHECK_DIR}/workflow.json"
if ! within "$N8N_CLI_SECONDS" n8n execute --id="$WORKFLOW_ID" --rawOutput > "$N8N_USER_FOLDER/execution.log" 2>&1; then
  tail -n 40 "$N8N_USER_FOLDER/execution.log" >&2
  echo "n8n could not run workflow $WORKFLOW_ID (publish to queue $CHECK_QUEUE on vhost $RABBITMQ_VHOST as user $RABBITMQ_USER)" >&2
  exit 1
fi
echo "n8n ran workflow $WORKFLOW_ID"
check receive`;

/** The ConfigMap's files: the workflow and the helper program. */
export function workflowCheckFiles(queue: string): Record<string, string> {
  return { 'workflow.json': `${JSON.stringify(checkWorkflow(queue), null, 2)}\n`, 'check.js': CHECK_PROGRAM };
}

/** The check's Job spec (a PostSync hook of n8n's Application, and a check of the verification). */
export function workflowCheck(connection: RabbitmqConnection, queue: string): Omit<CheckpointProps, 'hookWave'> {
  const scratch = (name: string, mountPath: string) => ({ volume: { name, emptyDir: {} } as k8s.Volume, mount: { name, mountPath } });
  const user = scratch('n8n-user-folder', SCRATCH_DIR);
  const tmp = scratch('tmp', '/tmp');
  return {
    description: `n8n runs a workflow (ConfigMap ${WORKFLOW_CHECK_CONFIG_MAP}) publishing to RabbitMQ queue ${queue} on vhost ${connection.vhost} as user ${connection.user}, and the message is read back`,
    image: IMAGES.n8n,
    // The CLI loads every node package and starts its task runner: memory as n8n itself needs.
    // A small CPU request, so the Job schedules where the plan leaves little (the capacity check
    // does not count checkpoint Jobs); it bursts to its limit on an idle node.
    resources: resources('50m', '512Mi', '1', '1Gi'),
    env: {
      HOME: SCRATCH_DIR,
      N8N_USER_FOLDER: SCRATCH_DIR,
      DB_TYPE: 'sqlite',
      N8N_DIAGNOSTICS_ENABLED: 'false',
      N8N_COMMUNITY_PACKAGES_ENABLED: 'false',
      N8N_ROOT: N8N_PACKAGE_ROOT,
      WORKFLOW_ID,
      CREDENTIAL_ID,
      CREDENTIAL_NAME,
      CHECK_QUEUE: queue,
      CHECK_MESSAGE,
      QUEUE_EXPIRES_MS: String(QUEUE_EXPIRES_MS),
      AMQP_SECONDS: String(AMQP_LIMIT_SECONDS),
      N8N_CLI_SECONDS: String(N8N_CLI_LIMIT_SECONDS),
      RABBITMQ_HOST: connection.host,
      RABBITMQ_PORT: String(connection.port),
      RABBITMQ_VHOST: connection.vhost,
      RABBITMQ_USER: connection.user,
    },
    secretEnv: {
      RABBITMQ_USERNAME: { name: connection.credentialsSecret, key: 'username' },
      RABBITMQ_PASSWORD: { name: connection.credentialsSecret, key: 'password' },
    },
    volumes: [{ name: 'workflow', configMap: { name: WORKFLOW_CHECK_CONFIG_MAP } }, user.volume, tmp.volume],
    volumeMounts: [{ name: 'workflow', mountPath: CHECK_DIR, readOnly: true }, user.mount, tmp.mount],
    script: CHECK_SCRIPT,
    scriptSeconds: WORKFLOW_CHECK_SECONDS,
  };
}
