#!/usr/bin/env node
// Send one contact.upsert to ctct-sync and wait for its result (amqplib).
//
// Usage: node producer.js EMAIL [FIRST_NAME]
//
// Environment (the daemon's own settings and defaults, plus two of this program's):
//   CTCT_SYNC__AMQP__URL             amqp://guest:guest@127.0.0.1:5672/%2f
//   CTCT_SYNC__AMQP__COMMANDS_QUEUE  ctct.commands
//   CTCT_WAIT_SECONDS                30
//   CTCT_COMMAND_ID                  a new UUID (re-send with the same id after a time-out)
//
// Prints the result as JSON. Exit code: 0 succeeded, 1 failed or rejected, 2 not sent
// (RabbitMQ unreachable, no commands queue, publish not confirmed), 3 no result in time.
'use strict';

const { randomUUID } = require('node:crypto');
const amqp = require('amqplib');

async function main() {
  const [email, firstName, ...rest] = process.argv.slice(2);
  if (!email || rest.length > 0) {
    console.error('usage: node producer.js EMAIL [FIRST_NAME]');
    return 2;
  }
  const env = process.env;
  const url = env.CTCT_SYNC__AMQP__URL || 'amqp://guest:guest@127.0.0.1:5672/%2f';
  const queue = env.CTCT_SYNC__AMQP__COMMANDS_QUEUE || 'ctct.commands';
  const wait = Number(env.CTCT_WAIT_SECONDS || 30);
  const id = env.CTCT_COMMAND_ID || randomUUID();
  const data = firstName === undefined ? { email } : { email, first_name: firstName };

  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    let returned = false;
    channel.on('return', () => { returned = true; }); // comes before the broker's confirm
    // A private, server-named queue (amq.gen-…) for the reply: ctct-sync answers there.
    const { queue: replies } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    const result = new Promise((resolve) => {
      channel.consume(replies, (message) => {
        if (message && message.properties.correlationId === id) resolve(JSON.parse(message.content));
      }, { noAck: true });
    });
    const body = Buffer.from(JSON.stringify({ id, type: 'contact.upsert', data }));
    const options = {
      contentType: 'application/json', persistent: true, mandatory: true,
      messageId: id, correlationId: id, replyTo: replies,
    };
    await new Promise((resolve, reject) => channel.sendToQueue(queue, body, options,
      (error) => (error ? reject(new Error('the broker did not confirm the command')) : resolve())));
    if (returned) {
      console.error(`error: queue ${queue} does not exist: start the daemon once`);
      return 2;
    }
    console.error(`sent contact.upsert ${id}`);

    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, wait * 1000, null); });
    const answer = await Promise.race([result, timeout]);
    clearTimeout(timer);
    if (answer === null) {
      console.error(`no result within ${wait} s; the command is queued (id ${id})`);
      return 3;
    }
    console.log(JSON.stringify(answer, null, 2));
    return answer.outcome === 'succeeded' ? 0 : 1;
  } finally {
    await connection.close();
  }
}

main().then((code) => { process.exitCode = code; }, (error) => {
  console.error(`error: ${error.message}`);
  process.exitCode = 2;
});
