// KafkaJS 2.2.4 against quorumq's Kafka listener, driven by tests/integration/kafkajs_test.cc.
// Every result is one JSON object per line on stdout (what the test parses); KafkaJS's own log
// goes to stderr, so a failure shows why.
//
//   node client.js produce BROKERS TOPIC COUNT
//       one producer, acks -1 (the quorum): COUNT messages with keys and headers, sent in
//       several requests; prints {"i","p","o"} per message: the offset it was acknowledged at.
//   node client.js consume BROKERS TOPIC GROUP LIMIT|end|end:P=O,... [crash]
//       one consumer of GROUP (fromBeginning), no auto-commit: each message is printed
//       ({"p","o","k","v","h"}), then the batch's offsets are committed with commitOffsets and
//       printed ({"committed":{"p","o"}}). Stops after LIMIT messages, or with `end` once every
//       partition's committed offset reaches the end offset it had at start (`end:0=12,1=7,...`:
//       the end offsets given, waiting for them to be readable); then leaves the
//       group and exits 0. With `crash`, the process SIGKILLs itself instead, after printing
//       the LIMIT-th message and before committing it: a consumer that dies mid-batch.
//   node client.js admin BROKERS TOPIC
//       createTopics (twice: the second finds it), listTopics, fetchTopicMetadata,
//       describeCluster: one line each.
//   node client.js delete BROKERS TOPIC
//       deleteTopics, then listTopics.
//   node client.js describe BROKERS GROUP
//       describeGroups of GROUP (and one that does not exist).
//   node client.js reset BROKERS TOPIC GROUP earliest|latest
//       admin resetOffsets of GROUP on TOPIC, then fetchOffsets: {"offsets":[{"partition","offset"}]}.
'use strict';

const { Kafka, Partitioners, logLevel } = require('kafkajs');

const [mode, brokers, ...args] = process.argv.slice(2);

const toStderr = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`);
};

const kafka = new Kafka({
  clientId: `quorumq-kafkajs-${mode}`,
  brokers: brokers.split(','),
  logLevel: logLevel.INFO,
  logCreator: toStderr,
  retry: { retries: 10 },
});

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const str = (b) => (b === null || b === undefined ? null : b.toString('utf8'));

async function produce(topic, count) {
  // Each message's partition is chosen by KafkaJS's default partitioner (murmur2 of the key, as
  // Java's), called here so that each acknowledgement can be matched to its messages.
  const admin = kafka.admin();
  await admin.connect();
  const [{ partitions }] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
  await admin.disconnect();
  const partitioner = Partitioners.DefaultPartitioner();
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const perRequest = 25;
  for (let start = 0; start < count; start += perRequest) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + perRequest); ++i) {
      const m = { key: `key-${i % 7}`, value: `message ${i}`, headers: { seq: `${i}`, origin: 'kafkajs', 'ü': 'wert ✓' } };
      m.partition = partitioner({ topic, partitionMetadata: partitions, message: m });
      messages.push(m);
    }
    const acks = await producer.send({ topic, acks: -1, messages });
    // KafkaJS sends a request's messages to each partition as one batch, in send order; each
    // partition's answer gives the base offset of its batch.
    const next = new Map(acks.map((a) => [a.partition, BigInt(a.baseOffset)]));
    for (const [j, m] of messages.entries()) {
      const o = next.get(m.partition);
      next.set(m.partition, o + 1n);
      out({ i: start + j, p: m.partition, o: o.toString() });
    }
  }
  await producer.disconnect();
}

async function consume(topic, group, limitArg, crash) {
  const toEnd = limitArg.startsWith('end');
  const limit = toEnd ? Infinity : Number(limitArg);
  const admin = kafka.admin();
  await admin.connect();
  // Where to stop: the end offsets given (end:P=O,...), or with `end` the end offsets now.
  const ends = limitArg.startsWith('end:')
    ? new Map(limitArg.slice(4).split(',').map((po) => po.split('=')).map(([p, o]) => [Number(p), BigInt(o)]))
    : new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  const committed = new Map();
  for (const t of await admin.fetchOffsets({ groupId: group, topics: [topic] }))
    for (const p of t.partitions) committed.set(p.partition, BigInt(p.offset) < 0n ? 0n : BigInt(p.offset));
  const caughtUp = () => [...ends].every(([p, end]) => (committed.get(p) ?? 0n) >= end);

  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) =>
    out({ joined: { memberId: payload.memberId, isLeader: payload.isLeader, assignment: payload.memberAssignment } }));
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  let seen = 0;
  let stopping = false;
  let described = false;

  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      if (stopping) return;
      if (!described) {
        described = true;
        const d = await admin.describeGroups([group]);
        out({ described: d.groups.map((g) => ({ groupId: g.groupId, state: g.state, protocolType: g.protocolType,
          protocol: g.protocol, members: g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId })) })) });
      }
      let last = null;
      for (const m of batch.messages) {
        if (!isRunning() || isStale()) break;
        const h = {};
        for (const [k, v] of Object.entries(m.headers || {})) h[k] = str(v);
        out({ p: batch.partition, o: m.offset, k: str(m.key), v: str(m.value), h });
        ++seen;
        if (crash && seen >= limit) process.kill(process.pid, 'SIGKILL');  // printed, not committed
        last = m.offset;
        resolveOffset(m.offset);
        if (seen >= limit) break;
      }
      if (last !== null) {
        const next = (BigInt(last) + 1n).toString();
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
        committed.set(batch.partition, BigInt(next));
        out({ committed: { p: batch.partition, o: next } });
      }
      await heartbeat();
      if (seen >= limit || (toEnd && caughtUp())) {
        stopping = true;
        finish();
      }
    },
  });
  if (toEnd && caughtUp()) finish();
  await finished;
  await consumer.disconnect();
  await admin.disconnect();
}

async function admin(topic) {
  const a = kafka.admin();
  await a.connect();
  out({ created: await a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 3 }] }) });
  let again;
  try {
    again = await a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 3 }] });
  } catch (e) {
    again = `${e.name}: ${e.message}`;
  }
  out({ createdAgain: again });
  out({ topics: (await a.listTopics()).sort() });
  out({ metadata: (await a.fetchTopicMetadata({ topics: [topic] })).topics });
  out({ cluster: await a.describeCluster() });
  await a.disconnect();
}

async function deleteTopic(topic) {
  const a = kafka.admin();
  await a.connect();
  await a.deleteTopics({ topics: [topic] });
  out({ deleted: topic });
  out({ topics: (await a.listTopics()).sort() });
  await a.disconnect();
}

async function describe(group) {
  const a = kafka.admin();
  await a.connect();
  out({ described: (await a.describeGroups([group])).groups });
  await a.disconnect();
}

async function reset(topic, group, where) {
  const a = kafka.admin();
  await a.connect();
  await a.resetOffsets({ groupId: group, topic, earliest: where === 'earliest' });
  const fetched = await a.fetchOffsets({ groupId: group, topics: [topic] });
  out({ offsets: fetched[0].partitions.map(({ partition, offset }) => ({ partition, offset })) });
  await a.disconnect();
}

(async () => {
  if (mode === 'produce') await produce(args[0], Number(args[1]));
  else if (mode === 'consume') await consume(args[0], args[1], args[2], args[3] === 'crash');
  else if (mode === 'admin') await admin(args[0]);
  else if (mode === 'delete') await deleteTopic(args[0]);
  else if (mode === 'describe') await describe(args[0]);
  else if (mode === 'reset') await reset(args[0], args[1], args[2]);
  else throw new Error(`unknown mode ${mode}`);
  process.exit(0);
})().catch((e) => {
  process.stderr.write(`kafkajs client failed: ${e.stack || e}\n`);
  process.exit(1);
});
